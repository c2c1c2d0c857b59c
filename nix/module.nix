# NixOS module: services.bedrud — the same service as the .deb's unit
# (systemd/bedrud.service): Type=notify, a static system user, state in
# /var/lib/bedrud, config in /etc/bedrud/config.yaml, the same sandbox.
#
#   services.bedrud = {
#     enable = true;
#     openFirewall = true;
#     settings.server.host = "meet.example.org";
#   };
#
# Secrets never go through the Nix store (it is world-readable): they come from
# files named in `credentials` (systemd LoadCredential=) or `environmentFile`.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    optional
    optionals
    types
    ;

  cfg = config.services.bedrud;
  lk = cfg.settings.livekit;
  embedded = !lk.external;
  tls = cfg.settings.server.tls != null && cfg.settings.server.tls.certFile != null;

  yaml = pkgs.formats.yaml { };
  # A null option means "bedrud's own default": the key is left out of the file.
  dropNulls =
    v:
    if builtins.isAttrs v then
      lib.mapAttrs (_: dropNulls) (lib.filterAttrs (_: x: x != null) v)
    else if builtins.isList v then
      map dropNulls v
    else
      v;
  configFile = yaml.generate "bedrud.yaml" (dropNulls cfg.settings);

  # Typed keys for what the module itself reads; any other bedrud key can be set
  # too (freeform), and bedrud rejects unknown ones at start.
  section =
    description: options:
    mkOption {
      inherit description;
      type = types.submodule {
        freeformType = yaml.type;
        inherit options;
      };
      default = { };
    };
  opt =
    type: default: description:
    mkOption { inherit type default description; };
  optNull = type: opt (types.nullOr type) null;

  outsideStore = p: !(lib.hasPrefix builtins.storeDir (toString p));
  hasSecret = cfg.credentials ? "livekit-api-secret" || (lk.apiSecretFile or null) != null;
  acmeDir = if cfg.useACMEHost != null then config.security.acme.certs.${cfg.useACMEHost}.directory else null;

  # One OpenID Connect provider of auth.oidc.
  oidcProvider = types.submodule {
    freeformType = yaml.type;
    options = {
      name = mkOption {
        type = types.strMatching "[a-z0-9-]{1,32}";
        description = "Short id: in the redirect URI <publicUrl>/api/auth/oidc/<name>/callback and the credential oidc-<name>.";
      };
      label = optNull types.str "Text of the sign-in button (default: the name).";
      issuer = mkOption {
        type = types.str;
        description = "Issuer URL (https://); discovery comes from <issuer>/.well-known/openid-configuration.";
      };
      clientId = mkOption {
        type = types.str;
        description = "The client id registered at the provider.";
      };
      clientSecretFile = optNull types.str "Must stay null: give the secret as credentials.oidc-<name> instead.";
      scopes = opt (types.listOf types.str) [ "openid" "email" "profile" ] "Scopes asked for (must include openid).";
      allowedDomains = opt (types.listOf types.str) [ ] "Only verified e-mail addresses in these domains may sign in.";
      allowedGroups = opt (types.listOf types.str) [ ] "Only members of one of these groups may sign in.";
      adminGroup = optNull types.str "Members of this group are bedrud administrators.";
      groupsClaim = opt types.str "groups" "The claim that lists a person's groups.";
      linkByEmail = opt types.bool false "A first sign-in whose verified e-mail is an account's verified address signs into that account.";
    };
  };
in
{
  options.services.bedrud = {
    enable = mkEnableOption "bedrud, a video-meeting control plane that runs its own LiveKit server (or uses an external one)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./nix/package.nix { }";
      description = "The bedrud package (daemon and CLI).";
    };

    livekitPackage = mkPackageOption pkgs "livekit" {
      extraDescription = "Run as bedrud's child in embedded mode: settings.livekit.binary defaults to its livekit-server.";
    };

    settings = mkOption {
      description = ''
        bedrud's configuration, written to /etc/bedrud/config.yaml (keys as in
        the project's packaging/config.yaml). Options left null are left out,
        so bedrud's own defaults apply. Never put secrets here.
      '';
      default = { };
      example = literalExpression ''
        {
          server.host = "meet.example.org";
          server.tls.certFile = "/var/lib/acme/meet.example.org/fullchain.pem";
          livekit.udpPortRangeStart = 50000;
          livekit.udpPortRangeEnd = 60000;
          auth.guestJoin = true;
        }
      '';
      type = types.submodule {
        freeformType = yaml.type;
        options = {
          server = section "The API listener: address, port, public host name, and TLS (own files or ACME)." {
            host = optNull types.str "Public DNS name (or IP) of this service: default client URLs, TURN domain, node IP.";
            publicUrl = optNull types.str "The URL people open (https://meet.example.org): links in mail, the OpenID redirect URI, the passkeys' origin and RP ID. Default from host, port and TLS.";
            bind = opt types.str "0.0.0.0" "Address the API listens on.";
            port = opt types.port 8090 "API port (443 works: the unit grants CAP_NET_BIND_SERVICE).";
            trustedProxies = opt (types.listOf types.str) [ ] "Reverse proxies (addresses or CIDRs) whose Forwarded / X-Forwarded-For headers name the client; sign-in throttling counts that client.";
            metricsAddress = optNull types.str "IP:port for Prometheus /metrics, e.g. 127.0.0.1:9090 (unauthenticated: keep it on loopback). Off when null.";
            maxConnections = opt types.int 8192 "Open API connections at most.";
            maxConnectionsPerAddress = opt types.int 256 "Open API connections from one client address at most.";
            tls = mkOption {
              type = types.nullOr (
                types.submodule {
                  freeformType = yaml.type;
                  options = {
                    certFile = optNull types.str "Certificate chain (PEM). Serving TLS also turns LiveKit's TURN on.";
                    keyFile = optNull types.str "Private key (PEM); prefer credentials.tls-key.";
                  };
                }
              );
              default = null;
              description = "TLS for the API (and TURN/TLS in embedded mode).";
            };
            acme = mkOption {
              type = types.nullOr (
                types.submodule {
                  freeformType = yaml.type;
                  options = {
                    email = optNull types.str "Contact address given to the CA (expiry notices).";
                    directoryUrl = opt types.str "https://acme-v02.api.letsencrypt.org/directory" "ACME directory of the CA.";
                    domains = opt (types.listOf types.str) [ ] "Names on the certificate; empty: server.host.";
                    caRoots = optNull types.str "PEM file of extra roots trusted for directoryUrl (a private CA).";
                    challenge = opt (types.enum [ "tls-alpn-01" "http-01" ]) "tls-alpn-01" "tls-alpn-01 on server.port (reachable as 443) or http-01 on httpPort (reachable as 80).";
                    httpPort = opt types.port 80 "Plain-HTTP port for http-01 (also redirects to HTTPS).";
                  };
                }
              );
              default = null;
              description = ''
                bedrud's own ACME: it obtains and renews the certificate (kept in
                /var/lib/bedrud/acme), serves it without a restart and reuses it for
                TURN/TLS. Alternatively use NixOS's security.acme with useACMEHost.
              '';
            };
          };

          database = section "Where the store (one redb file) lives." {
            # Explicit so that the operator's CLI, run without $STATE_DIRECTORY,
            # opens the service's store.
            path = opt types.str "/var/lib/bedrud/bedrud.redb" "The store (redb file).";
            cacheSize = opt types.int 67108864 "redb's page cache in bytes.";
            historyRetention = opt types.str "90days" "Participant history older than this is removed (then the file is compacted when worthwhile).";
          };

          livekit = section "LiveKit: embedded (bedrud runs livekit-server) or external, its keys, ports and addresses." {
            external = opt types.bool false "Use a LiveKit server run elsewhere instead of starting livekit-server as a child.";
            host = optNull types.str "URL clients connect to (ws:// or wss://); default ws(s)://<server.host>:<port>.";
            internalHost = optNull types.str "URL bedrud uses for LiveKit's API (http:// or https://); default http://127.0.0.1:<port>.";
            apiKey = optNull types.str "LiveKit API key; embedded mode generates one when unset. The secret goes in credentials.livekit-api-secret.";
            apiSecret = optNull types.str "Must stay null: the Nix store is world-readable. Use credentials.livekit-api-secret or environmentFile.";
            nodeIP = optNull types.str "IP announced in ICE candidates; default server.host when it is an IP, else the outbound route's address.";
            binary = optNull types.str "livekit-server executable; default (embedded) livekitPackage's.";
            port = opt types.port 7880 "LiveKit signalling (HTTP/WebSocket, TCP).";
            tcpPort = opt types.port 7881 "ICE over TCP.";
            udpPort = opt types.port 7882 "ICE over UDP, one port (unless a range is set).";
            udpPortRangeStart = optNull types.port "First port of a UDP media range (with udpPortRangeEnd).";
            udpPortRangeEnd = optNull types.port "Last port of the UDP media range.";
            turnUdpPort = opt types.port 3478 "TURN over UDP (when bedrud serves TLS).";
            turnTlsPort = opt types.port 5349 "TURN over TLS (when bedrud serves TLS).";
          };

          auth = section "Accounts: open registration, guests, sessions, login limits, passkeys, OpenID Connect providers." {
            registration = opt types.bool false "Anyone may create an account.";
            guestJoin = opt types.bool false "People without an account may join public rooms.";
            passkeys = opt types.bool true "Users may register passkeys and sign in with them (needs server.publicUrl to name a host).";
            oidc = opt (types.listOf oidcProvider) [ ] "OpenID Connect providers for single sign-on, a button each. Client secrets: credentials.oidc-<name>.";
            maxConcurrentHashes = optNull types.int "Password hashes (Argon2, ~19 MiB each) running at once; default the number of cores.";
          };

          smtp = section "Outgoing mail (password reset, e-mail confirmation): the relay, its login and the sender." {
            host = optNull types.str "SMTP relay; unset, no mail is sent (no password reset, no e-mail verification).";
            port = optNull types.port "Default 587 (starttls), 465 (tls), 25 (none).";
            security = opt (types.enum [ "starttls" "tls" "none" ]) "starttls" "How the connection to the relay is protected.";
            username = optNull types.str "Login at the relay; the password goes in credentials.smtp-password.";
            passwordFile = optNull types.str "Must stay null: use credentials.smtp-password.";
            from = optNull types.str "Sender, e.g. \"bedrud <meet@example.org>\"; required with host.";
            caFile = optNull types.str "A PEM certificate to trust besides the system's roots.";
          };

          logging = section "Log level and format (journald under systemd)." {
            level = opt types.str "info" "trace, debug, info, warn, error, or a tracing filter.";
          };
        };
      };
    };

    credentials = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        livekit-api-secret = "/run/keys/bedrud-livekit-secret";
        tls-key = "/var/lib/acme/meet.example.org/key.pem";
        smtp-password = "/run/keys/bedrud-smtp";
        oidc-corp = "/run/keys/bedrud-oidc-corp";
      };
      description = ''
        systemd credentials, NAME = absolute path outside the Nix store
        (LoadCredential=NAME:PATH). systemd reads the files as root, so they can
        stay root-only. bedrud reads `livekit-api-secret` (the LiveKit API
        secret), `tls-key` (the key for server.tls.certFile), `smtp-password`
        (the SMTP login's password) and `oidc-<name>` (the client secret of the
        OpenID provider <name>).
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/bedrud.env";
      description = ''
        File outside the Nix store with BEDRUD_<SECTION>_<KEY>=value overrides,
        e.g. BEDRUD_LIVEKIT_API_SECRET=... (systemd EnvironmentFile=).
      '';
    };

    useACMEHost = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "meet.example.org";
      description = ''
        Serve the certificate of security.acme.certs.<name> (obtained by NixOS's
        own ACME client): sets server.tls.certFile to its fullchain.pem, hands
        its key.pem over as the tls-key credential, adds the bedrud user to the
        certificate's group, and reloads bedrud after each renewal (bedrud
        re-reads the certificate on SIGHUP and restarts LiveKit for TURN/TLS
        when the certificate changed). Not together with settings.server.acme.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the API port and, in embedded mode, LiveKit's: signalling
        (livekit.port/tcp), ICE (livekit.tcpPort/tcp, livekit.udpPort or the UDP
        range), and TURN (turnUdpPort/udp, turnTlsPort/tcp) when serving TLS.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = lk.apiSecret == null;
        message = "services.bedrud.settings.livekit.apiSecret would be copied into the world-readable Nix store; put the secret in a root-only file and set services.bedrud.credentials.livekit-api-secret (or environmentFile with BEDRUD_LIVEKIT_API_SECRET).";
      }
      {
        assertion = lib.all outsideStore (lib.attrValues cfg.credentials ++ optional (cfg.environmentFile != null) cfg.environmentFile);
        message = "services.bedrud.credentials and environmentFile must name files outside the Nix store (use a string path, not a Nix path literal, which gets copied into the store).";
      }
      {
        assertion = embedded || lk.apiKey != null || cfg.environmentFile != null;
        message = "services.bedrud: an external LiveKit (settings.livekit.external) needs settings.livekit.apiKey and its secret (credentials.livekit-api-secret or environmentFile).";
      }
      {
        # bedrud refuses to start with one and not the other, in either mode;
        # an environmentFile may hold either, so it is trusted.
        assertion = cfg.environmentFile != null || (lk.apiKey != null) == hasSecret;
        message =
          if lk.apiKey != null then
            "services.bedrud: settings.livekit.apiKey is set but its secret is not: add credentials.livekit-api-secret (a root-only file), settings.livekit.apiSecretFile, or environmentFile with BEDRUD_LIVEKIT_API_SECRET."
          else
            "services.bedrud: a LiveKit API secret is given (credentials.livekit-api-secret or settings.livekit.apiSecretFile) without settings.livekit.apiKey: set the key that goes with it, or remove the secret to let embedded mode generate both.";
      }
      {
        assertion = cfg.useACMEHost == null || cfg.settings.server.acme == null;
        message = "services.bedrud: useACMEHost (NixOS's ACME) and settings.server.acme (bedrud's own) are both set; keep one.";
      }
      {
        assertion = cfg.settings.server.acme == null || cfg.settings.server.host != null || cfg.settings.server.acme.domains != [ ];
        message = "services.bedrud: settings.server.acme needs settings.server.host (or settings.server.acme.domains), the DNS name to obtain a certificate for.";
      }
      {
        # Files bedrud reads itself run as the service user and may sit in the store by
        # mistake; credentials are read by systemd as root and never copied.
        assertion = cfg.settings.smtp.passwordFile == null && lib.all (p: p.clientSecretFile == null) cfg.settings.auth.oidc;
        message = "services.bedrud: give the SMTP password as credentials.smtp-password and each OpenID client secret as credentials.oidc-<name>, not as settings.*File.";
      }
      {
        assertion = (lk.udpPortRangeStart == null) == (lk.udpPortRangeEnd == null);
        message = "services.bedrud.settings.livekit: set both udpPortRangeStart and udpPortRangeEnd, or neither.";
      }
    ];

    services.bedrud.settings.livekit.binary = mkIf embedded (
      mkDefault (lib.getExe' cfg.livekitPackage "livekit-server")
    );

    # NixOS's ACME: its fullchain for the API (and TURN/TLS), its key as a
    # credential (systemd reads it as root), a reload after each renewal.
    services.bedrud.settings.server.tls = mkIf (cfg.useACMEHost != null) { certFile = "${acmeDir}/fullchain.pem"; };
    services.bedrud.credentials = mkIf (cfg.useACMEHost != null) { tls-key = "${acmeDir}/key.pem"; };
    security.acme.certs = mkIf (cfg.useACMEHost != null) {
      ${cfg.useACMEHost}.reloadServices = [ "bedrud.service" ];
    };

    users.users.bedrud = {
      isSystemUser = true;
      group = "bedrud";
      # Reads fullchain.pem of security.acme's certificate (its directory is 0750).
      extraGroups = optional (cfg.useACMEHost != null) config.security.acme.certs.${cfg.useACMEHost}.group;
      home = "/var/lib/bedrud";
      description = "bedrud video-meeting service";
    };
    users.groups.bedrud = { };

    # Where both the service and the CLI look by default.
    environment.etc."bedrud/config.yaml".source = configFile;
    # The CLI: runuser -u bedrud -- bedrud user create admin --admin --password-stdin
    environment.systemPackages = [ cfg.package ];

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts =
        [ cfg.settings.server.port ]
        ++ optional (cfg.settings.server.acme != null && cfg.settings.server.acme.challenge == "http-01") cfg.settings.server.acme.httpPort
        ++ optionals embedded ([ lk.port lk.tcpPort ] ++ optional tls lk.turnTlsPort);
      allowedUDPPorts = optionals embedded (
        optional (lk.udpPortRangeStart == null) lk.udpPort ++ optional tls lk.turnUdpPort
      );
      allowedUDPPortRanges = optional (embedded && lk.udpPortRangeStart != null) {
        from = lk.udpPortRangeStart;
        to = lk.udpPortRangeEnd;
      };
    };

    systemd.services.bedrud = {
      description = "bedrud video-meeting control plane";
      documentation = [ "https://github.com/bedrud/bedrud" ];
      wantedBy = [ "multi-user.target" ];
      # LiveKit resolves its node IP from the outbound route at start.
      wants = [ "network-online.target" ] ++ optional (cfg.useACMEHost != null) "acme-finished-${cfg.useACMEHost}.target";
      after = [ "network-online.target" ] ++ optional (cfg.useACMEHost != null) "acme-finished-${cfg.useACMEHost}.target";
      # A settings change is applied with SIGHUP, not a restart, which would end
      # every meeting (port changes need `systemctl restart bedrud`).
      reloadTriggers = [ configFile ];

      serviceConfig = {
        # READY=1 once the API listens and LiveKit answers healthy;
        # RELOADING=1/READY=1 around SIGHUP; STOPPING=1; WATCHDOG=1.
        Type = "notify";
        NotifyAccess = "main";
        ExecStart = "${lib.getExe cfg.package} run --config /etc/bedrud/config.yaml";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        RestartSec = "2s";
        WatchdogSec = "30s";
        # bedrud also asks for more with EXTEND_TIMEOUT_USEC while LiveKit starts.
        TimeoutStartSec = "90s";
        # bedrud drains livekit-server, then forces it; this bounds the whole stop.
        TimeoutStopSec = "45s";
        # SIGTERM to bedrud alone, which stops its child in order.
        KillMode = "mixed";

        # Static user (not DynamicUser=): the operator's CLI opens the same store.
        User = "bedrud";
        Group = "bedrud";
        StateDirectory = "bedrud";
        StateDirectoryMode = "0750";
        RuntimeDirectory = "bedrud";
        RuntimeDirectoryMode = "0750";
        UMask = "0077";

        LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") cfg.credentials;
        EnvironmentFile = optional (cfg.environmentFile != null) cfg.environmentFile;

        # Port 443 for the API with TLS; nothing else.
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        LimitNOFILE = 65536;

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateMounts = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        # Not ProcSubset=pid: livekit-server needs /proc/stat.
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        # INET/INET6: API, signalling, ICE, TURN; NETLINK: LiveKit lists the
        # interfaces; UNIX: sd_notify and journald.
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged @resources" ];
        SystemCallErrorNumber = "EPERM";
        # Not PrivateUsers=: it would void CAP_NET_BIND_SERVICE on the host network.
      };
    };
  };
}
