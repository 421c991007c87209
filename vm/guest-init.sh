# podlab guest, stage 2 (run by busybox sh as PID 1 after switch_root, from the host's disk).
# Starts dockerd and the harness's agent, then becomes pause: the guest's init reaps every orphan.
# Paths come from the kernel command line: podlab.agent=, podlab.pause=.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
say() { echo "podlab: $* at $(busybox cut -d' ' -f1 /proc/uptime) s" > /dev/console; }
say "stage 2"
for word in $(busybox cat /proc/cmdline); do
    case "$word" in
        podlab.agent=*) agent=${word#podlab.agent=} ;;
        podlab.pause=*) pause=${word#podlab.pause=} ;;
    esac
done
busybox hostname podlab-guest
busybox ip link set lo up
busybox mkdir -p /run/podlab
# The same flags as the docker engine's private daemon: no iptables rules, no masquerading,
# no forwarding, and no DNS server but 127.0.0.1: nothing can leave the guest (it has no network card anyway).
# containerd is started here rather than by dockerd, so that the two (large, read over 9p,
# started under emulation) load side by side on the guest's two CPUs.
busybox mkdir -p /run/podlab/containerd
printf 'version = 2\nroot = "/var/lib/docker/containerd"\nstate = "/run/podlab/containerd"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "/run/podlab/containerd/containerd.sock"\n' > /run/podlab/containerd.toml
containerd --config /run/podlab/containerd.toml > /run/podlab/containerd.log 2>&1 &
dockerd --host=unix:///run/docker.sock --containerd=/run/podlab/containerd/containerd.sock \
    --iptables=false --ip-masq=false --ip-forward=false \
    --dns=127.0.0.1 --storage-driver=overlay2 > /run/podlab/dockerd.log 2>&1 &
"$agent" guest-agent &
exec "$pause"
