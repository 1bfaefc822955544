package export

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Files lists an image's flattened filesystem: one tar header per entry,
// as a runtime that unpacks the image would make it.
func Files(img v1.Image) ([]*tar.Header, error) {
	var hdrs []*tar.Header
	err := walk(img, func(h *tar.Header, _ io.Reader) (bool, error) {
		hdrs = append(hdrs, h)
		return false, nil
	})
	return hdrs, err
}

// ExtractFile copies the regular file name (as in KernelPath, with or
// without its leading slash) out of img into w.
func ExtractFile(img v1.Image, name string, w io.Writer) error {
	name = strings.TrimPrefix(name, "/")
	found := false
	err := walk(img, func(h *tar.Header, r io.Reader) (bool, error) {
		if h.Name != name || h.Typeflag != tar.TypeReg {
			return false, nil
		}
		found = true
		_, err := io.Copy(w, r)
		return true, err
	})
	if err == nil && !found {
		err = fmt.Errorf("export: no file %s in the image", name)
	}
	return err
}

var errStop = errors.New("stop")

func walk(img v1.Image, f func(*tar.Header, io.Reader) (stop bool, err error)) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("export: reading the image: %w", err)
		}
		h.Name = strings.TrimPrefix(h.Name, "./")
		stop, err := f(h, tr)
		if err != nil || stop {
			return err
		}
	}
}
