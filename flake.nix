{
  description = "bedrud: self-hosted video-meeting control plane around a LiveKit media server";

  # nixos-unstable: a Rust new enough for Cargo.lock and a recent pkgs.livekit.
  # flake.lock pins the revision.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        bedrud = pkgs.callPackage ./nix/package.nix { };
        default = bedrud;
      });

      # services.bedrud; its package defaults to the one built from this tree.
      nixosModules.default = ./nix/module.nix;
      nixosModules.bedrud = ./nix/module.nix;

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        vm = pkgs.testers.nixosTest (import ./nix/test.nix { module = self.nixosModules.default; });
      });
    };
}
