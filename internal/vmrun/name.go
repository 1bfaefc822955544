package vmrun

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// Docker-style names, adjective_noun: short enough to type, many enough
// (40 × 40) that a collision is rare, and one is retried.
var (
	adjectives = []string{
		"agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "daring", "eager",
		"fast", "fierce", "gentle", "glad", "grand", "happy", "hardy", "jolly", "keen", "kind",
		"lively", "lucid", "merry", "mighty", "neat", "nimble", "noble", "proud", "quick", "quiet",
		"rapid", "sharp", "shiny", "steady", "sunny", "swift", "tidy", "vivid", "warm", "witty",
	}
	nouns = []string{
		"badger", "bear", "beaver", "bison", "crane", "crow", "deer", "dolphin", "eagle", "falcon",
		"ferret", "finch", "fox", "gecko", "heron", "ibex", "jaguar", "koala", "lark", "lemur",
		"lynx", "marten", "mole", "moose", "newt", "otter", "owl", "panda", "puffin", "quail",
		"raven", "robin", "seal", "shrew", "stoat", "swan", "tapir", "toad", "walrus", "wren",
	}
)

// ErrNameTaken: a VM of that name exists.
var ErrNameTaken = errors.New("name already in use")

func pick(words []string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
	if err != nil {
		return words[0]
	}
	return words[n.Int64()]
}

// GenerateName returns a docker-style name, adjective_noun.
func GenerateName() string { return pick(adjectives) + "_" + pick(nouns) }

// reserve makes the directory of the VM called name, 0700, failing with
// ErrNameTaken when one exists: making it is what claims the name, so two
// runs cannot both get it. An empty name gets a generated one.
func (s State) reserve(name string) (VMDir, error) {
	if err := os.MkdirAll(s.VMs(), 0o700); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	generated := name == ""
	for try := 0; ; try++ {
		if generated {
			name = GenerateName()
			if try >= 20 {
				name = fmt.Sprintf("%s_%d", name, try)
			}
		} else if err := CheckName(name); err != nil {
			return "", err
		}
		dir := s.VM(name)
		err := os.Mkdir(string(dir), 0o700)
		switch {
		case err == nil:
			return dir, nil
		case errors.Is(err, os.ErrExist) && generated && try < 100:
			continue
		case errors.Is(err, os.ErrExist):
			return "", fmt.Errorf("VM %q: %w (ginitctl rm %s)", name, ErrNameTaken, name)
		}
		return "", fmt.Errorf("VM directory: %w", err)
	}
}
