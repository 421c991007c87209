# The NixOS VM test that `nix flake check` runs: a NixOS guest with Docker enabled runs the
# scenario suite with `--on host` (the docker runtime on that guest's own dockerd, through
# DOCKER_HOST) against the flake's own pause. The scenarios are the repository's own files
# (a store copy of the same tree), not a copy kept here.
{ src, pause, xtask, harnessTools }:
{
  name = "podlab-scenarios";

  nodes.machine = { pkgs, ... }: {
    virtualisation.docker.enable = true;
    # Three images (the ghost stand-in carries Node.js) and three containers at a time.
    virtualisation.memorySize = 3072;
    virtualisation.diskSize = 4096;
    virtualisation.cores = 2;
    environment.systemPackages = [ xtask ] ++ harnessTools;
    # Nothing in a pod may leave the machine; the test VM has no route out anyway.
    networking.firewall.enable = true;
  };

  # Generous: the suite takes about 15 s on a host's Docker, far more under emulation.
  globalTimeout = 1800;

  testScript = ''
    machine.wait_for_unit("docker.service")
    machine.succeed("cp -r ${src} /root/podlab && chmod -R u+w /root/podlab")
    machine.succeed(
        "set -o pipefail && cd /root/podlab && "
        + "PODLAB_WORKSPACE=/root/podlab DOCKER_HOST=unix:///run/docker.sock "
        + "xtask test --on host --pause-bin ${pause}/bin/pause --run-timeout 1500 "
        + "2>&1 | tee /root/podlab-test.log"
    )
    machine.copy_from_vm("/root/podlab/target/podlab", "podlab-artifacts")
  '';
}
