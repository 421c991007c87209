# podlab guest, stage 2 (run by busybox sh as PID 1 after switch_root, from the host's disk).
# Starts the runtime's daemons and the harness's agent, then becomes pause: the guest's init
# reaps every orphan. Paths come from the kernel command line: podlab.services= (a script the
# runtime wrote into the run's artifacts), podlab.agent=, podlab.pause=.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
say() { echo "podlab: $* at $(busybox cut -d' ' -f1 /proc/uptime) s" > /dev/console; }
say "stage 2"
for word in $(busybox cat /proc/cmdline); do
    case "$word" in
        podlab.services=*) services=${word#podlab.services=} ;;
        podlab.agent=*) agent=${word#podlab.agent=} ;;
        podlab.pause=*) pause=${word#podlab.pause=} ;;
    esac
done
busybox hostname podlab-guest
busybox ip link set lo up
busybox mkdir -p /run/podlab
# The runtime's daemons start first, in the background, so that they load (large binaries,
# read over 9p, under emulation) while the agent starts; the runtime waits for them itself.
[ -n "$services" ] && . "$services"
# The agent must outlive whatever a scenario does to the guest's memory: the kernel's OOM
# killer never picks it (the commands it runs inherit this; containers, which containerd starts, do not).
"$agent" guest-agent &
echo -1000 > /proc/$!/oom_score_adj
exec "$pause"
