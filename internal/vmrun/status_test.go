package vmrun

import (
	"testing"

	"github.com/ginit-dev/ginit/internal/ctlproto"
)

func TestLiveString(t *testing.T) {
	three := 3
	for _, tt := range []struct {
		l    Live
		want string
	}{
		{Live{Phase: Created}, "created"},
		{Live{Phase: Running}, "running"},
		{Live{Phase: Dead}, "dead"},
		{Live{Phase: Exited, Exit: &three}, "exited (3)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseBooting}}, "running (booting)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseStarting}}, "running (starting)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseRunning, Pid: 7}}, "running (started)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseRunning, Ready: true}}, "running (ready)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseStopping}}, "running (stopping)"},
		{Live{Phase: Running, Guest: &ctlproto.Status{Phase: ctlproto.PhaseExited, Exit: &three}}, "running (exited 3)"},
	} {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.l, got, tt.want)
		}
	}
}
