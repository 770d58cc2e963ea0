/* Tap devices (Documentation/networking/tuntap.rst): IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR with a 12-byte header, the layout of virtio_net_hdr_v1 (virtio 1.2,
 * 5.1.6), so frames pass between the guest's rings and the tap unchanged. */
#include "devices/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

_Static_assert(TAP_OFFLOAD_CSUM == TUN_F_CSUM && TAP_OFFLOAD_TSO4 == TUN_F_TSO4 &&
		       TAP_OFFLOAD_TSO6 == TUN_F_TSO6 && TAP_OFFLOAD_TSO_ECN == TUN_F_TSO_ECN,
	       "TAP_OFFLOAD_* are linux/if_tun.h's TUN_F_*");

#define TUN_PATH "/dev/net/tun"
#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* The header size and no offloads until the guest says what it accepts. */
static int setup_vnet(struct tap *tap)
{
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int err = -errno;
		log_error("tap %s: cannot set the virtio-net header size: %s", tap->name,
			  strerror(-err));
		return err;
	}
	return tap_set_offload(tap, 0);
}

static int open_tun(const char *name)
{
	int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int err = -errno;
	if (err == -ENOENT || err == -ENODEV)
		log_error("tap %s: %s is missing (is the tun module loaded? modprobe tun)", name,
			  TUN_PATH);
	else if (err == -EACCES || err == -EPERM)
		log_error("tap %s: no permission to open %s (needs root or the device's group)",
			  name, TUN_PATH);
	else
		log_error("tap %s: cannot open %s: %s", name, TUN_PATH, strerror(-err));
	return err;
}

static void log_setiff_error(const char *name, int err)
{
	if (err == -EPERM)
		log_error("tap %s: not permitted to create or attach it (needs CAP_NET_ADMIN, or a "
			  "persistent tap owned by this user)", name);
	else if (err == -EBUSY)
		log_error("tap %s: busy: already attached (by another process or device)", name);
	else if (err == -EINVAL)
		log_error("tap %s: exists with other settings (a tun device, or multi-queue)",
			  name);
	else
		log_error("tap %s: cannot create or attach it: %s", name, strerror(-err));
}

/* A tap created here starts down; bring it up so the host can use it at once. */
static void bring_up(const struct tap *tap)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		log_warn("tap %s: cannot bring it up: %m", tap->name);
		return;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, tap->name, sizeof(ifr.ifr_name));
	bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
	if (ok) {
		ifr.ifr_flags |= IFF_UP;
		ok = ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
	}
	if (!ok)
		log_warn("tap %s: cannot bring it up: %m", tap->name);
	close(s);
}

int tap_open(struct tap *tap, const char *name)
{
	memset(tap, 0, sizeof(*tap));
	tap->fd = -1;
	if (!name || !name[0] || strlen(name) >= IFNAMSIZ) {
		log_error("tap name '%s' must be 1 to %d characters", name ? name : "",
			  IFNAMSIZ - 1);
		return -EINVAL;
	}
	memcpy(tap->name, name, strlen(name) + 1);
	bool existed = if_nametoindex(name) != 0;
	int fd = open_tun(name);
	if (fd < 0)
		return fd;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, tap->name, sizeof(ifr.ifr_name));
	ifr.ifr_flags = TAP_FLAGS;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;
		log_setiff_error(name, err);
		close(fd);
		return err;
	}
	tap->fd = fd;
	tap->is_tap = true;
	int err = setup_vnet(tap);
	if (err) {
		tap_close(tap);
		return err;
	}
	if (!existed)
		bring_up(tap);
	log_debug("tap %s: %s", name, existed ? "attached" : "created");
	return 0;
}

int tap_set_mtu(struct tap *tap, int mtu)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, tap->name, sizeof(ifr.ifr_name));
	ifr.ifr_mtu = mtu;
	int err = s < 0 || ioctl(s, SIOCSIFMTU, &ifr) < 0 ? -errno : 0;
	if (s >= 0)
		close(s);
	if (err)
		log_error("tap %s: cannot set its MTU to %d: %s", tap->name, mtu, strerror(-err));
	return err;
}

int tap_check_free(const char *name)
{
	if (!name || !name[0] || strlen(name) >= IFNAMSIZ || if_nametoindex(name) == 0)
		return 0; /* missing: created at boot */
	int fd = open(TUN_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	ifr.ifr_flags = TAP_FLAGS;
	int err = ioctl(fd, TUNSETIFF, &ifr) < 0 ? -errno : 0;
	close(fd);
	return err == -EBUSY ? -EBUSY : 0;
}

int tap_adopt_fd(struct tap *tap, int fd)
{
	memset(tap, 0, sizeof(*tap));
	tap->fd = -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		log_error("tap fd %d: not a tap device: %m", fd);
		return -EINVAL;
	}
	memcpy(tap->name, ifr.ifr_name, sizeof(tap->name) - 1);
	if ((ifr.ifr_flags & TAP_FLAGS) != TAP_FLAGS) {
		log_error("tap %s (fd %d): must be opened with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR",
			  tap->name, fd);
		return -EINVAL;
	}
	int err = set_nonblocking(fd);
	if (err) {
		log_error("tap %s (fd %d): %s", tap->name, fd, strerror(-err));
		return err;
	}
	tap->fd = fd;
	tap->is_tap = true;
	err = setup_vnet(tap);
	if (err)
		tap->fd = -1; /* the caller still owns fd on failure */
	return err;
}

int tap_from_packet_fd(struct tap *tap, int fd)
{
	memset(tap, 0, sizeof(*tap));
	tap->fd = -1;
	int err = set_nonblocking(fd);
	if (err)
		return err;
	tap->fd = fd;
	return 0;
}

int tap_set_offload(struct tap *tap, unsigned offloads)
{
	if (!tap->is_tap)
		return 0;
	if (ioctl(tap->fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0) {
		int err = -errno;
		log_error("tap %s: offloads 0x%x refused: %s", tap->name, offloads, strerror(-err));
		return err;
	}
	return 0;
}

void tap_close(struct tap *tap)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
}
