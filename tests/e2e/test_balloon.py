"""virtio-balloon gives guest memory back to the host: pages the guest touched and
then handed to the balloon leave argon-vmm's resident set."""
import re

from conftest import GUEST, needs_kvm

pytestmark = needs_kvm

MIB = 1 << 20


def resident_guest_memory(pid):
    """Guest RAM in argon-vmm's resident set: its memfd pages (RssShmem)."""
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"RssShmem:\s+(\d+) kB", f.read())
    return int(m.group(1)) * 1024


def test_inflating_the_balloon_lowers_the_vmms_rss(console):
    c = console(["--kernel", GUEST, "--memory", "512", "--balloon", "192",
                 "--cmdline", "console=ttyS0"])
    c.expect(b"argon> ")
    c.send(b"mem-touch 256\n")
    c.expect(b"mem-touch: touched_mib 256")
    touched = resident_guest_memory(c.proc.pid)
    assert touched >= 256 * MIB, touched
    c.send(b"balloon\n")
    c.expect(b"balloon: target_pages 49152 actual_pages 49152")
    after = resident_guest_memory(c.proc.pid)
    # 192 MiB went to the balloon; allow a little for rings and the guest's own use.
    assert after <= touched - 180 * MIB, (touched, after)
    c.send(b"poweroff\n")
    assert c.wait() == 0
