{
  description = "bedrud: self-hosted video-meeting control plane around a LiveKit media server";

  # A release branch: a Rust new enough for Cargo.lock (rust-version in
  # Cargo.toml) and pkgs.livekit >= 1.9. No flake.lock is committed (this tree
  # is tested without nixpkgs); `nix flake lock` records the exact revision of
  # the branch on first use, and `nix flake update` moves it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

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
      # A module value, not a bare path: older Nix rejects a path here in
      # `nix flake check`.
      nixosModules.default = { imports = [ ./nix/module.nix ]; };
      nixosModules.bedrud = self.nixosModules.default;

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        vm = pkgs.testers.nixosTest (import ./nix/test.nix { module = self.nixosModules.default; });
      });
    };
}
