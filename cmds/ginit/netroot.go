package main

import (
	"errors"

	"github.com/ginit-dev/ginit/internal/netconf"
)

// pullRoot pulls the image root= names into a tmpfs at newRoot.
func (b *boot) pullRoot(network *netconf.Network) (string, error) {
	return "", errors.New("root=" + b.cfg.Root + ": pulling an image at boot is not built yet")
}
