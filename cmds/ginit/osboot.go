package main

import "errors"

// bootOS finds the operating system on the machine's disks and kexecs it.
// It does not return.
func (b *boot) bootOS() {
	b.fail(errors.New("ginit.mode=boot: booting the operating system on the disks is not built yet"))
}
