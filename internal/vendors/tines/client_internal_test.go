package tines

import (
	"testing"

	"github.com/credsync/credsync/internal/vendors"
)

// onList compares the host as DNS does, without regard to case, and the
// rest of the URL exactly. (The end-to-end cases, against a TLS tenant, are
// in TestListPageRefusesNextPageOffTheList.)
func TestOnListHostCase(t *testing.T) {
	c := &Client{api: vendors.KeyAPI{Base: "https://Acme.tines.com"}}
	for u, want := range map[string]bool{
		"https://acme.tines.com/api/v1/user_credentials?page=2":       true,
		"https://ACME.TINES.COM/api/v1/user_credentials?page=2":       true,
		"HTTPS://acme.tines.com/api/v1/user_credentials?page=2":       true,
		"https://acme.tines.com/API/v1/user_credentials?page=2":       false,
		"https://acme.tines.com.evil.example/api/v1/user_credentials": false,
		"https://acme.tines.com:444/api/v1/user_credentials":          false,
	} {
		if got := c.onList(u); got != want {
			t.Errorf("onList(%q) = %v, want %v", u, got, want)
		}
	}
}
