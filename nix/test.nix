# NixOS VM test: the module on a booted NixOS, embedded LiveKit from pkgs.livekit.
# Run with `nix flake check` (or `nix build .#checks.x86_64-linux.vm`).
# The VM has no network but its own loopback; nothing leaves it.
{ module }:

{
  name = "bedrud";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ module ];
      services.bedrud.enable = true;
      environment.systemPackages = [ pkgs.curl pkgs.jq ];
      virtualisation.memorySize = 1024;
    };

  testScript = ''
    import json

    def api(method, path, body=None, token=None):
        cmd = f"curl -sS -m 10 -X {method} -H 'Content-Type: application/json'"
        if token:
            cmd += f" -H 'Authorization: Bearer {token}'"
        if body is not None:
            cmd += f" --data '{json.dumps(body)}'"
        cmd += f" -w '\\n%{{http_code}}' http://127.0.0.1:8090{path}"
        out = machine.succeed(cmd).rsplit("\n", 1)
        return int(out[1]), (json.loads(out[0]) if out[0].strip() else None)

    machine.wait_for_unit("bedrud.service")

    with subtest("READY means the API and LiveKit answer"):
        code, health = api("GET", "/api/health")
        assert code == 200 and health["status"] == "ok", health
        machine.succeed("curl -sf http://127.0.0.1:7880/ | grep -q OK")

    with subtest("unprivileged, sandboxed"):
        pid = machine.succeed("systemctl show -P MainPID bedrud").strip()
        machine.succeed(f"test \"$(stat -c %U /proc/{pid})\" = bedrud")
        machine.succeed(f"grep -q '^CapEff:.*0000000000000400$' /proc/{pid}/status")

    with subtest("LiveKit's lines reach the journal, marked"):
        machine.wait_until_succeeds(
            "journalctl -u bedrud -o json | jq -e 'select(.SOURCE == \"livekit\" and .LIVEKIT_PID != null)' | grep -q .",
            timeout=30,
        )

    with subtest("admin from the CLI, login, room, join token"):
        password = "vm-test-admin-password-0123456789"
        machine.succeed(
            f"echo '{password}' | runuser -u bedrud -- bedrud user create admin --admin --password-stdin"
        )
        code, login = api("POST", "/api/auth/login", {"username": "admin", "password": password})
        assert code == 200 and login["token"], login
        code, room = api("POST", "/api/room/create", {"name": "my-room"}, login["token"])
        assert code == 201, room
        code, join = api("POST", "/api/room/join", {"room": "my-room"}, login["token"])
        assert code in (200, 201) and join["token"].count(".") == 2, join
        assert join["room"] == "my-room" and join["url"].startswith("ws"), join

    with subtest("bedrud doctor, as root, through the running daemon"):
        out = machine.succeed("bedrud doctor")
        assert "checked by the running daemon" in out and "ok    webhook" in out, out

    with subtest("reload keeps the process; stop leaves no livekit-server"):
        pid = machine.succeed("systemctl show -P MainPID bedrud").strip()
        machine.succeed("systemctl reload bedrud")
        machine.succeed("systemctl is-active bedrud")
        assert machine.succeed("systemctl show -P MainPID bedrud").strip() == pid
        machine.succeed("systemctl stop bedrud")
        machine.fail("pgrep -x livekit-server")
  '';
}
