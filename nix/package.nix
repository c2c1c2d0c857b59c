# The bedrud daemon and CLI, built from this tree with the locked dependencies,
# with the web client (web/, built by Vite from its package-lock.json) embedded.
# livekit-server is not bundled: the NixOS module passes pkgs.livekit's binary
# to the daemon (settings.livekit.binary).
{
  lib,
  rustPlatform,
  buildNpmPackage,
  importNpmLock,
  nodejs,
}:

let
  manifest = (lib.importTOML ../Cargo.toml).package;
  root = toString ../.;
  # Build inputs only: no build outputs, caches or local data, and no Nix files
  # (editing the module must not rebuild the daemon).
  excluded = [ "target" ".cache" "data" "nix" "flake.nix" "flake.lock" "result" "web/node_modules" "web/dist" ];

  # The client: npm dependencies come from package-lock.json's own integrity
  # hashes (importNpmLock), so there is no separate hash to keep up to date.
  web = buildNpmPackage {
    pname = "${manifest.name}-web";
    inherit (manifest) version;
    src = lib.cleanSource ../web;
    npmDeps = importNpmLock { npmRoot = lib.cleanSource ../web; };
    npmConfigHook = importNpmLock.npmConfigHook;
    inherit nodejs;
    installPhase = ''
      runHook preInstall
      cp -r dist $out
      runHook postInstall
    '';
  };
in
rustPlatform.buildRustPackage {
  pname = manifest.name;
  inherit (manifest) version;

  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter =
      path: _type:
      let
        rel = lib.removePrefix (root + "/") (toString path);
      in
      !(lib.any (p: rel == p || lib.hasPrefix (p + "/") rel) excluded);
  };

  cargoLock.lockFile = ../Cargo.lock;

  # build.rs embeds the client from here.
  BEDRUD_WEB_DIST = web;

  # The integration tests (tests/) boot a real livekit-server and real LiveKit
  # clients, which the build sandbox does not have; the library's own unit
  # tests run.
  cargoTestFlags = [ "--lib" ];

  meta = {
    description = manifest.description;
    homepage = manifest.repository;
    license = lib.licenses.asl20;
    mainProgram = "bedrud";
    platforms = lib.platforms.linux;
  };
}
