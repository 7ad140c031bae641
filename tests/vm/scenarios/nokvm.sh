#!/bin/sh
# Inside the lab VM, booted without KVM: the agent must refuse to start with
# one line saying what to do, then work once KVM is loaded.
begin() { echo "=== BEGIN $1 ==="; }
end() { echo "=== END $1 ==="; }

begin nokvm
kvm-unsync-exporter --check >/tmp/out 2>/tmp/err
echo "rc=$?"
cat /tmp/err
end nokvm

load-kvm >/dev/null 2>&1

begin loaded
kvm-unsync-exporter --check 2>&1
echo "rc=$?"
end loaded
