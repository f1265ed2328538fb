package plugin

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
)

// A long list, as wide as it needs without a terminal, and cut to fit an
// 80-column terminal: the owner column gives way first, then the name.
// A 40-column terminal is too narrow: every column that gives way is at its
// narrowest (the golden file shows it).
func TestExpiringTableWidth(t *testing.T) {
	var rcs []v1alpha1.RemoteCredential
	for i := range 40 {
		exp := metav1.NewTime(t0.Add(time.Duration(i-3) * 36 * time.Hour))
		rc := v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%c", 'a'+i%5), Name: fmt.Sprintf("credential-with-a-rather-long-name-%02d", i)}}
		rc.Spec.ProviderRef.Name = "tines-prod"
		rc.Status.Vendor, rc.Status.ExpiresAt = "tines", &exp
		rc.Status.Owner = fmt.Sprintf("someone.with.a.long.address-%d@platform-team.example.com", i)
		rc.Status.Tines = &v1alpha1.TinesCredentialStatus{OwnerEmail: rc.Status.Owner}
		rcs = append(rcs, rc)
	}
	found := expiringWithin(rcs, t0.Add(30*24*time.Hour))
	for _, width := range []int{0, 80, 40} {
		var b bytes.Buffer
		if err := printTable(&b, width, expiringTable(found, true, t0), expiringShrink...); err != nil {
			t.Fatal(err)
		}
		golden(t, fmt.Sprintf("expiring-long-width-%d.txt", width), b.String())
		if width == 0 {
			continue
		}
		for i, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > width && width >= 80 {
				t.Errorf("width %d, line %d is %d columns: %q", width, i, n, line)
			}
		}
	}
}

// Relative times read as kubectl's ages: apimachinery's HumanDuration,
// truncated, not rounded.
func TestHumanTimes(t *testing.T) {
	cases := map[time.Duration]string{
		12*24*time.Hour + time.Hour: "12d", 47 * time.Hour: "47h", 3 * time.Hour: "3h", 90 * time.Minute: "90m",
		5 * time.Minute: "5m", 119 * time.Second: "119s", time.Second: "1s", 9*24*time.Hour - time.Minute: "8d",
	}
	for d, want := range cases {
		if got := relative(t0.Add(d), t0); got != "in "+want {
			t.Errorf("relative(now+%s) = %q, want %q", d, got, "in "+want)
		}
		if got := relative(t0.Add(-d), t0); got != want+" ago" {
			t.Errorf("relative(now-%s) = %q, want %q", d, got, want+" ago")
		}
	}
	if got := expiry(t0.Add(-72*time.Hour), t0); got != "expired 3d ago" {
		t.Errorf("expiry = %q", got)
	}
	if got := expiry(t0.Add(72*time.Hour), t0); got != "expires in 3d" {
		t.Errorf("expiry = %q", got)
	}
	if got := relative(t0.Add(48*time.Hour), t0); got != "in 2d" {
		t.Errorf("relative = %q", got)
	}
}

// A cell is cut at a rune's start, never inside one, and marked.
func TestCut(t *testing.T) {
	for in, want := range map[string]string{"short": "short", "credential-with-a-long-name": "crede...", "ünïcödé-nämé": "ünï..."} {
		if got := cut(in, 8); got != want || len(got) > 8 {
			t.Errorf("cut(%q, 8) = %q, want %q", in, got, want)
		}
	}
}

func TestParseWindow(t *testing.T) {
	good := map[string]time.Duration{"30d": 30 * 24 * time.Hour, "12h": 12 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0, "90m": 90 * time.Minute, "36500d": 36500 * 24 * time.Hour}
	for in, want := range good {
		if got, err := parseWindow(in); err != nil || got != want {
			t.Errorf("parseWindow(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "d", "-1d", "1.5d", "30 d", "1d-2h", "x30d", "200000d", "36500d2562047h"} {
		if _, err := parseWindow(in); err == nil {
			t.Errorf("parseWindow(%q) accepted", in)
		}
	}
}

// A vendor's numbers print as the vendor wrote them, however large.
func TestVendorDetailsKeepNumbers(t *testing.T) {
	team, folder := int64(1234567), int64(42)
	got := vendorDetails(&v1alpha1.RemoteCredentialStatus{Tines: &v1alpha1.TinesCredentialStatus{TeamID: &team, FolderID: &folder}})
	want := [][2]string{{"Folder ID", "42"}, {"Team ID", "1234567"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("vendorDetails = %v, want %v", got, want)
	}
}

// sync --wait is answered by its own request, or by a later one that
// replaced it before the operator saw it; never by an earlier one.
func TestHandled(t *testing.T) {
	req := "2026-11-30T10:00:00.123456789Z"
	for last, want := range map[string]bool{
		req:                              true,
		"2026-11-30T10:00:01Z":           true,
		"2026-11-30T10:00:00.1Z":         false,
		"":                               false,
		"not a time":                     false,
		"2026-11-30T11:00:00.5+01:00":    true,
		"2026-11-30T09:59:59.999999999Z": false,
	} {
		if got := handled(last, req); got != want {
			t.Errorf("handled(%q, %q) = %v, want %v", last, req, got, want)
		}
	}
}
