// Command ginit is PID 1 of a ginit image. It mounts the pseudo-filesystems,
// loads the kernel modules the hardware asks for (each device's modalias
// matched against the image's modules.alias, loaded concurrently), brings the
// network up with DHCP, mounts the root disk made from a container image, and
// runs the image's entrypoint inside it as a child, as `docker run` would run
// the image's config (/.ginit/image.json), reaping every process. When the
// entrypoint exits it stops what is left, syncs, unmounts and powers off (or
// does what ginit.onexit says). SIGTERM, SIGPWR, Ctrl-Alt-Del (SIGINT) and the
// ACPI power button stop the workload with its StopSignal first. It never
// exits: every failure ends in the ginit.onerror action.
//
// Modules listed in /etc/modules-load.d/*.conf that no device can ask for
// (they have no alias, such as filesystems) are loaded unconditionally.
//
// When the machine has a virtio-serial port named org.ginit.control, ginit
// serves the control channel on it (control.go, internal/ctlserver): status
// and events, stop, and commands run beside the workload in its root
// (`ginitctl exec`), reaped by the same reaper.
//
// Kernel parameters read from /proc/cmdline:
//
//	root=DEV            root disk: /dev/NAME, LABEL=, UUID=, PARTUUID=, PARTLABEL= (default LABEL=ginit-root)
//	root=docker://REF   diskless: pull the image from a registry into a tmpfs root (needs ocipull in the image)
//	root=oci:URL[:NAME] diskless: the same from an OCI image layout served over HTTP
//	ginit.rootsize=SIZE the diskless root's tmpfs size: 512m, 2g, 50% (default 50% of memory)
//	ginit.install=DISK  write the pulled image onto DISK as oci2disk would, then reboot into it;
//	                    a DISK that already holds the same reference is booted as it is
//	ginit.mode=MODE     container (run the image's entrypoint), boot (kexec the operating
//	                    system found on the disks) or auto (default: container, and boot
//	                    when root= is not given and no container disk appears)
//	osboot.entry=SEL    with ginit.mode=boot: boot only this entry (number, title, id, or
//	                    GRUB menu path as GRUB_DEFAULT takes it: 1>0, SUBMENU-ID>ENTRY-ID)
//	osboot.append=ARGS  with ginit.mode=boot: added to the booted kernel's command line
//	rootfstype=TYPE     filesystem type (default: probed from the superblock)
//	rootflags=OPTS      mount data for the root filesystem
//	ro, rw              mount the root read-only or read-write (default rw)
//	rootwait[=DUR]      wait for the root device (bare: a day); default 10s
//	rootdelay=SECS      same, in seconds, as the kernel documents it
//	ginit.rootwait=DUR  same, as a duration (500ms, 30s)
//	entrypoint=WORDS    replaces the image's Entrypoint and Cmd (shell words, no expansion)
//	ginit.cmd=WORDS     replaces the image's Cmd
//	ginit.env=K=V       adds or overrides an environment variable (repeatable)
//	ginit.workdir=DIR   working directory (created when missing)
//	ginit.user=USER     user[:group], names or ids from the image's /etc/passwd
//	ip=...              off|dhcp|dhcp6|auto|auto6|DEV:AUTOCONF|CLIENT:SERVER:GW:MASK:HOST:DEV:AUTOCONF:DNS0:DNS1
//	                    (repeatable; default DHCPv4 + IPv6 on every wired link)
//	ginit.netwait=DUR   how long the workload waits for the first lease (default 3s; 0: no wait)
//	ginit.modules=A,B   modules to load beyond /etc/modules-load.d
//	ginit.onexit=ACT    poweroff (default), reboot, halt or shell when the workload ends
//	ginit.onerror=ACT   shell (default), poweroff, reboot or halt when the boot fails
//	ginit.rebootdelay=DUR with onerror=reboot: how long the error shows before the reboot (default 10s)
//	ginit.shell=1       also start a shell on the console beside the workload
//	ginit.stoptimeout=DUR grace between the stop signal and SIGKILL (default 10s)
//	ginit.debugexit=P   isa-debug-exit port on QEMU (default 0xf4; off to disable)
//	ginit.debug         log more
//	quiet               log less on the console
//
// An image may set parameters of its own in /etc/ginit/cmdline (the linuxboot
// image: ginit.onerror=reboot, for consoles a fleet reaches over the network);
// /proc/cmdline's come after them and win.
//
// With QEMU's ISA pvpanic device present (KubeVirt's panicDevices), a
// non-zero status is reported as a guest panic after the clean shutdown.
//
// A host may also hand ginit a run document, JSON in QEMU's fw_cfg
// (-fw_cfg name=opt/ginit/run,file=PATH; internal/rundoc, the README has the
// schema): entrypoint, cmd, env, workdir, user, hostname, name servers,
// extra hosts, tmpfs mounts, a read-only root, the stop signal, volumes
// (virtiofs tags, disks by serial) and the host terminal's size, which
// ginit sets on the console, off /proc/cmdline where every process
// could read them. Modules the image lacks (virtiofs) may come in a second
// archive after the initramfs, listed in modules.extra.dep. It is read through the qemu_fw_cfg
// driver where the kernel has it, else through fw_cfg's x86 I/O ports. The image's config < the run document
// < the parameters above. A bad document is one warning and is ignored; its
// values are never logged.
//
// Once the workload runs, kernel messages below warning go to dmesg only, not
// into the middle of the workload's console lines; loglevel=, ignore_loglevel,
// debug and ginit.debug keep the kernel's level.
package main
