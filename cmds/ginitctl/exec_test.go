package main

import (
	"flag"
	"slices"
	"testing"
)

func TestSplitShortFlags(t *testing.T) {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.Bool("i", false, "")
	fs.Bool("t", false, "")
	fs.String("e", "", "")
	fs.String("u", "", "")
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-it", "web", "sh"}, []string{"-i", "-t", "web", "sh"}},
		{[]string{"-ti", "-u", "app", "web", "ls", "-it"}, []string{"-t", "-i", "-u", "app", "web", "ls", "-it"}},
		{[]string{"-e", "A=1", "-it", "web"}, []string{"-e", "A=1", "-i", "-t", "web"}},
		{[]string{"-e", "-it", "web"}, []string{"-e", "-it", "web"}},
		{[]string{"-i", "--", "-it"}, []string{"-i", "--", "-it"}},
		{[]string{"-iu", "web"}, []string{"-iu", "web"}},
		{[]string{"--it", "web"}, []string{"--it", "web"}},
		{[]string{"-u=app", "-it"}, []string{"-u=app", "-i", "-t"}},
	} {
		if got := splitShortFlags(fs, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitShortFlags(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
