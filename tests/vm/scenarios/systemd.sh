#!/bin/sh
# Inside the lab VM with systemd as PID 1 (tests/vm/systemd/): the agent
# runs from deploy/'s units, enabled as an operator would, KVM loaded.
# Run by kue-lab.service once kvm-unsync-exporter.service has started.
#   units          state of the socket and service, the status line the
#                  agent sent with READY=1, the fd systemd passed
#   threads        each thread's capabilities, under the unit's bounds
#   shape sd       a kvmwalk run (--tables 8)
#   metrics        a scrape after it
#   reload         systemctl reload (SIGHUP), the service still running
#   stop           systemctl stop: result, exit status, pins left, the
#                  socket still listening, how long it took
#   reactivated    a scrape on the port started the service again
#   reactivated unit  and its state then
#   refused        ARGS="--web.listen-address=..." in /etc/default and a
#                  systemctl restart: the unit failed at once with exit
#                  2, no restart pending or made; then a scrape on the
#                  port (refused: the agent shut the socket down) and the
#                  socket unit's state once systemd saw it
#   moved          the way README and the man page give instead: the flag
#                  out of ARGS, ListenStream= set with systemctl edit on
#                  the socket unit, both units restarted: the unit state,
#                  the socket's address, scrapes on the new and old port
#   journal        what the agent logged (journalctl)
U=kvm-unsync-exporter
PIN=/sys/fs/bpf/kvm_unsync
. /lib/kue-scenario.sh
# show UNIT: "UNIT Key=Value" lines
show() {
	systemctl --no-pager show -p ActiveState -p SubState -p Result -p MainPID \
		-p ExecMainStatus -p StatusText -p NRestarts -p Listen "$1" |
		sed "s/^/$1 /"
}

pid=$(systemctl show -p MainPID --value $U.service)
begin units
show $U.socket
show $U.service
echo "fds=$(ls -l /proc/$pid/fd 2>/dev/null | grep -c 'socket:')"
readlink /proc/$pid/fd/3
end units

begin threads
threads $pid
end threads

walk sd --tables 8
begin metrics
scrape
end metrics

systemctl reload $U.service
rc=$?
sleep 1
begin reload
echo "rc=$rc"
show $U.service
end reload

t0=$(uptime_cs)
systemctl stop $U.service
rc=$?
t1=$(uptime_cs)
begin stop
echo "rc=$rc"
echo "centiseconds=$((t1 - t0))"
show $U.service
show $U.socket
echo "pins=$(ls $PIN 2>/dev/null | wc -l)"
end stop

begin reactivated
scrape | grep -E '^kvm_unsync_(probe_attached|build_info)'
end reactivated
begin "reactivated unit"
show $U.service
end "reactivated unit"

# What an operator tries first: the port in ARGS, the Debian way.  The
# restart job ends when the agent exits; the unit's state then says whether
# systemd will start it again (activating/auto-restart) or not (failed).
mkdir -p /etc/default
echo 'ARGS="--web.listen-address=127.0.0.1:9100"' >/etc/default/$U
systemctl restart $U.service
rc=$?
begin refused
echo "rc=$rc"
show $U.service
# (timeout, not wget -T: busybox 1.35's wget -T crashes on a refused connect)
timeout 10 wget -q -O /dev/null "http://$ADDR/metrics"
echo "scrape=$?"
# at most 30 s (of the VM's clock: each systemctl is slow under TCG)
t_end=$(($(uptime_cs) + 3000))
while [ "$(systemctl show -p ActiveState --value $U.socket)" != failed ] &&
	[ "$(uptime_cs)" -lt $t_end ]; do
	sleep 0.1
done
show $U.socket
end refused

# What the agent's line says to do instead.  systemctl edit runs the
# editor on a copy of the drop-in and installs it (and reloads systemd)
# when the editor leaves something in it.
echo 'ARGS=""' >/etc/default/$U
cat >/tmp/kue-editor <<'EDIT'
#!/bin/sh
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:9100\n' >"$1"
EDIT
chmod +x /tmp/kue-editor
begin moved
SYSTEMD_EDITOR=/tmp/kue-editor systemctl edit $U.socket
echo "edit=$?"
ls /etc/systemd/system/$U.socket.d/ | sed 's/^/dropin=/'
systemctl restart $U.socket $U.service
echo "rc=$?"
show $U.service
show $U.socket
ADDR=127.0.0.1:9100 scrape | grep -c '^kvm_unsync_build_info' | sed 's/^/new=/'
scrape >/dev/null 2>&1
echo "old=$?"
end moved

begin journal
journalctl --no-pager -u $U.service -o cat
end journal
