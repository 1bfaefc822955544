package ociimage

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// httpStore reads an OCI image layout served over HTTP by any static file
// server (a PXE boot server, `python3 -m http.server`): base + "/" + member.
// Every blob is still checked against its digest, so plain HTTP is safe
// for a digest-pinned layout and as safe as its index.json otherwise.
type httpStore struct {
	base   string
	client *http.Client
}

func newHTTPStore(base string, n Net) httpStore {
	return httpStore{base: strings.TrimSuffix(base, "/"), client: &http.Client{Transport: n.Transport()}}
}

func (h httpStore) String() string { return h.base }

func (h httpStore) url(name string) (string, error) {
	n, err := cleanMember(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", h.base, err)
	}
	return h.base + "/" + n, nil
}

func (h httpStore) open(name string) (io.ReadCloser, int64, error) {
	u, err := h.url(name)
	if err != nil {
		return nil, 0, err
	}
	resp, err := h.client.Get(u)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}

func (h httpStore) has(name string) bool {
	u, err := h.url(name)
	if err != nil {
		return false
	}
	resp, err := h.client.Head(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// isURL reports whether an oci: path is a layout served over HTTP.
func isURL(p string) bool {
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

// splitURLRef splits URL[:NAME]: the first colon after the URL's last slash
// starts the name (ref.name annotation), as in http://host:8080/layout:v1.
// A name cannot hold a slash.
func splitURLRef(arg string) (string, string) {
	scheme := strings.Index(arg, "://") + len("://")
	slash := strings.LastIndex(arg, "/")
	if slash < scheme {
		return arg, ""
	}
	if colon := strings.Index(arg[slash:], ":"); colon >= 0 {
		return arg[:slash+colon], arg[slash+colon+1:]
	}
	return arg, ""
}
