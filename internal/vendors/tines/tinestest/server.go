// Package tinestest is a fake Tines tenant over HTTPS, like net/http/httptest:
// GET /api/v1/user_credentials/{id} and the paginated list
// GET /api/v1/user_credentials with Bearer or X-User-Token auth,
// documented payloads, and per-credential faults from vendortest.
package tinestest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Credential is one credential the fake holds, as Tines documents it.
type Credential struct {
	ID              int64
	Name            string
	Description     string
	Mode            string
	TeamID          int64
	FolderID        *int64
	ReadAccess      string
	Slug            string
	RestrictionType string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       *time.Time
	OwnerEmail      string
	// Metadata is free-form and may hold anything, secrets included: a
	// client must never copy it anywhere.
	Metadata map[string]string
}

// ListID is the Scenarios key of the list endpoint: every list request is
// recorded under it (never under a credential ID), faults set for it
// (FailNext, Set) answer list requests, and Calls(ListID) counts them.
// Every other key is a credential ID.
const ListID = "list"

// Page sizes of the list endpoint, as Tines documents them.
const (
	DefaultPerPage = 20
	MaxPerPage     = 500
)

// Server is a fake Tines tenant.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS

	mu     sync.Mutex
	apiKey string
	creds  map[string]Credential
	list   listKnobs
}

// listKnobs are the list endpoint's realism knobs.
type listKnobs struct {
	maxPerPage   int  // 0: MaxPerPage
	omitOptional bool // items without expires_at and owner
	loop         bool // next_page is the current page, forever
}

// NewServer starts a fake tenant that accepts apiKey.
func NewServer(apiKey string) *Server {
	s := &Server{apiKey: apiKey, creds: map[string]Credential{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/user_credentials/{id}", s.getCredential)
	mux.HandleFunc("GET /api/v1/user_credentials", s.listCredentials)
	s.Listen(mux)
	return s
}

// SetAPIKey changes the accepted API key (a rotation).
func (s *Server) SetAPIKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = k
}

// Put adds or replaces a credential.
func (s *Server) Put(c Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[strconv.FormatInt(c.ID, 10)] = c
}

// Delete removes a credential: later requests get 404.
func (s *Server) Delete(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.creds, strconv.FormatInt(id, 10))
}

// SetMaxPerPage makes the list endpoint hand back at most n items per page
// whatever per_page asks (meta.per_page tells the size used); n <= 0
// restores Tines' documented maximum, MaxPerPage.
func (s *Server) SetMaxPerPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list.maxPerPage = n
}

// SetListOmitsOptional makes list items leave out expires_at and owner,
// which Tines does not confirm for list answers; the GET still has them.
func (s *Server) SetListOmitsOptional(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list.omitOptional = omit
}

// SetNextPageLoop breaks the list endpoint: meta.next_page points back at
// the current page on every page, the last included, so a client that
// trusts it never stops.
func (s *Server) SetNextPageLoop(loop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list.loop = loop
}

// ListCalls returns how many list requests arrived, answered or not.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok == s.apiKey
	}
	return r.Header.Get("X-User-Token") == s.apiKey && s.apiKey != ""
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if f, ok := s.Record(id); ok && vendortest.Apply(w, r, f, func(status int) (string, string) { return errorBody(status, id) }) {
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, id)
		return
	}
	s.mu.Lock()
	c, ok := s.creds[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, id)
		return
	}
	b, _ := json.Marshal(render(c))
	vendortest.JSON(w, http.StatusOK, b)
}

// listCredentials answers GET /api/v1/user_credentials?per_page=N&page=P
// (optional team_id and folder_id): items by ID ascending, rendered as the
// GET renders them, and Tines' meta with absolute page URLs.
func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.Record(ListID); ok && vendortest.Apply(w, r, f, func(status int) (string, string) { return errorBody(status, "") }) {
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, "")
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	knobs := s.list
	all := s.matching(q.Get("team_id"), q.Get("folder_id"))
	s.mu.Unlock()
	p := paginate(len(all), q, knobs)
	items := make([]map[string]any, 0, p.end-p.start)
	for _, c := range all[p.start:p.end] {
		items = append(items, listItem(c, knobs.omitOptional))
	}
	b, _ := json.Marshal(map[string]any{"user_credentials": items, "meta": p.meta(pageURL(r, p.perPage), knobs.loop)})
	vendortest.JSON(w, http.StatusOK, b)
}

// matching returns the credentials that pass the filters ("" for none),
// by ID ascending. The caller holds s.mu.
func (s *Server) matching(teamID, folderID string) []Credential {
	var out []Credential
	for _, c := range s.creds {
		if teamID != "" && strconv.FormatInt(c.TeamID, 10) != teamID {
			continue
		}
		if folderID != "" && (c.FolderID == nil || strconv.FormatInt(*c.FolderID, 10) != folderID) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Credential) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// page is one page of a list answer.
type page struct {
	number, perPage, pages, count int
	start, end                    int // the page's slice of the items
}

// paginate reads per_page and page as Tines does (missing or unusable
// values fall back to the defaults, per_page is capped) for count items.
func paginate(count int, q url.Values, knobs listKnobs) page {
	perPage := vendortest.Positive(q.Get("per_page"), DefaultPerPage)
	perPage = min(perPage, MaxPerPage)
	if knobs.maxPerPage > 0 {
		perPage = min(perPage, knobs.maxPerPage)
	}
	p := page{number: vendortest.Positive(q.Get("page"), 1), perPage: perPage, count: count}
	p.pages = (count + perPage - 1) / perPage
	p.start = min((p.number-1)*perPage, count)
	p.end = min(p.start+perPage, count)
	return p
}

// meta renders the page's meta. On the last page next_page is null but
// next_page_number is not (a quirk seen at Tines); past the last page both
// are null. With loop, next_page is the current page.
func (p page) meta(at func(page int) string, loop bool) map[string]any {
	var prev, next, nextNumber any
	if p.number > 1 {
		prev = at(p.number - 1)
	}
	last := p.number >= p.pages
	if !last || p.number == max(p.pages, 1) {
		nextNumber = p.number + 1
	}
	if !last {
		next = at(p.number + 1)
	}
	if loop {
		next, nextNumber = at(p.number), p.number
	}
	return map[string]any{
		"current_page": at(p.number), "previous_page": prev, "next_page": next,
		"next_page_number": nextNumber, "per_page": p.perPage, "pages": p.pages, "count": p.count,
	}
}

// pageURL returns the absolute URL of a page of r's list: same host, path
// and filters, page and per_page (the size used) set.
func pageURL(r *http.Request, perPage int) func(page int) string {
	return func(page int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return u.String()
	}
}

// listItem renders c as a list item: as the GET does, minus expires_at and
// owner when omitOptional.
func listItem(c Credential, omitOptional bool) map[string]any {
	item := render(c)
	if omitOptional {
		delete(item, "expires_at")
		delete(item, "owner")
	}
	return item
}

func writeError(w http.ResponseWriter, status int, id string) {
	ct, body := errorBody(status, id)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, body)
}

// errorBody mimics Tines: Rails-style bodies that vary by status.
func errorBody(status int, id string) (string, string) {
	switch status {
	case http.StatusUnauthorized:
		return "application/json", `{"error":"You need to sign in or sign up before continuing."}`
	case http.StatusForbidden:
		return "application/json", `{"errors":[{"message":"You do not have permission to access this credential"}]}`
	case http.StatusNotFound:
		msg, _ := json.Marshal("Couldn't find UserCredential with 'id'=" + id)
		return "application/json", `{"errors":[{"message":` + string(msg) + `}]}`
	case http.StatusTooManyRequests:
		return "text/plain", "Retry later\n"
	default:
		return "application/json", `{"errors":[{"message":"Something went wrong"}]}`
	}
}

func render(c Credential) map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	var expires any
	if c.ExpiresAt != nil {
		expires = ts(*c.ExpiresAt)
	}
	var folder any
	if c.FolderID != nil {
		folder = *c.FolderID
	}
	meta := c.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	first, last, _ := strings.Cut(strings.Split(c.OwnerEmail, "@")[0], ".")
	return map[string]any{
		"id": c.ID, "name": c.Name, "mode": c.Mode, "team_id": c.TeamID, "folder_id": folder,
		"read_access": c.ReadAccess, "shared_team_slugs": []string{}, "slug": c.Slug,
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt), "description": c.Description,
		"allowed_hosts": []string{}, "metadata": meta, "restriction_type": c.RestrictionType,
		"test_credential_enabled": false, "expires_at": expires,
		"owner": map[string]any{"user_id": 1, "first_name": first, "last_name": last, "email": c.OwnerEmail},
	}
}

// Sample returns a credential with realistic defaults; id and name set.
func Sample(id int64, name string) Credential {
	created := time.Date(2021, 3, 26, 12, 34, 16, 540e6, time.UTC)
	return Credential{
		ID: id, Name: name, Mode: "TEXT", TeamID: 2, ReadAccess: "TEAM",
		Slug: name, RestrictionType: "UNRESTRICTED", CreatedAt: created, UpdatedAt: created,
		OwnerEmail: "jane.doe@example.com",
	}
}
