{
  description = "podlab: a regression lab for the Kubernetes pod sandbox (pause, and the pod contract around it)";

  # A release branch, not a pinned revision: nothing here could verify a revision's hash.
  # The first `nix flake check` writes flake.lock; commit it to pin what you checked.
  # Rust edition 2024 needs rustc 1.85 or later: nixos-25.05 has it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      lib = nixpkgs.lib;

      # The workspace's sources, without build outputs.
      src = lib.cleanSourceWith {
        src = ./.;
        filter = path: type: !(lib.hasInfix "/target" path);
      };

      # One vendored dependency set for every cargo derivation here.
      rustPackage = args: pkgs.rustPlatform.buildRustPackage ({
        version = "0.1.0";
        inherit src;
        cargoLock.lockFile = ./Cargo.lock;
        # The k8s-cri crate compiles the CRI protocol with protoc when xtask builds.
        nativeBuildInputs = [ pkgs.protobuf ] ++ (args.nativeBuildInputs or [ ]);
      } // builtins.removeAttrs args [ "nativeBuildInputs" ]);

      # The static, no_std pause: `cargo build --release -p pause`, as the README says.
      pause = rustPackage {
        pname = "pause";
        cargoBuildFlags = [ "--package" "pause" ];
        # The contract tests start pause as PID 1 of new PID namespaces: the build sandbox
        # does not reliably allow that, and `cargo test --workspace` runs them outside Nix.
        doCheck = false;
        meta = {
          description = "The infra container of a Kubernetes pod: sleeps as PID 1, reaps zombies, exits cleanly on SIGINT/SIGTERM";
          license = lib.licenses.asl20;
          mainProgram = "pause";
        };
      };

      # The harness, run inside the NixOS test VM against a copy of the sources (PODLAB_WORKSPACE).
      xtask = rustPackage {
        pname = "xtask";
        cargoBuildFlags = [ "--package" "xtask" ];
        doCheck = false;
        meta.mainProgram = "xtask";
      };

      # What the harness calls at run time, on the host or in a guest.
      harnessTools = with pkgs; [
        docker containerd cni-plugins iptables nginx nodejs pkgsStatic.busybox util-linux iproute2 procps curl xz glibc.bin
      ];
    in
    {
      packages.${system} = {
        inherit pause xtask;
        default = pause;
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = with pkgs; [
          cargo rustc rustfmt clippy protobuf
          gcc glibc.static # the harness tests build broken pauses with gcc -static
          qemu
        ] ++ harnessTools;
      };

      checks.${system} = {
        inherit pause;

        clippy = rustPackage {
          pname = "podlab-clippy";
          nativeBuildInputs = [ pkgs.clippy ];
          buildPhase = "cargo clippy --workspace --all-targets --offline -- -D warnings";
          installPhase = "touch $out";
          doCheck = false;
        };

        # rustfmt on every source file (it finds rustfmt.toml itself); no cargo, so nothing is resolved.
        rustfmt = pkgs.runCommand "podlab-rustfmt" { nativeBuildInputs = [ pkgs.rustfmt pkgs.findutils ]; } ''
          find ${src} -name '*.rs' -print0 | xargs -0 rustfmt --edition 2024 --check
          touch $out
        '';

        # The scenario suite, the same files as `cargo xtask test` runs, inside a NixOS VM with
        # Docker, against the flake's own pause (see vm/nixos-test.nix).
        scenarios = pkgs.testers.runNixOSTest (import ./vm/nixos-test.nix {
          inherit src pause xtask harnessTools;
        });
      };

      formatter.${system} = pkgs.nixpkgs-fmt;
    };
}
