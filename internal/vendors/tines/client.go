// Package tines reads Tines credential metadata:
// GET {url}/api/v1/user_credentials/{id} with "Authorization: Bearer <key>".
// The key is verified with a one-item list: GET {url}/api/v1/user_credentials?per_page=1.
package tines

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Vendor is Tines' registration.
func Vendor() vendors.Vendor {
	return vendors.Vendor{
		Name:     v1alpha1.VendorTines,
		Selected: func(spec *v1alpha1.CredentialProviderSpec) bool { return spec.Tines != nil },
		SecretRef: func(spec *v1alpha1.CredentialProviderSpec) vendors.SecretRef {
			return vendors.APIKeyRef(spec.Tines.APIKeySecretRef)
		},
		CheckRef: vendors.IDOnly(v1alpha1.VendorTines),
		URL:      baseURL,
		// Tenants are {tenant}.tines.com, older ones {tenant}.tines.io.
		SaaSHosts: []string{"*.tines.com", "*.tines.io"},
		New:       newClient,
		// Tines allows 5000 requests a minute per IP and token; leave a
		// fifth of it to the token's other users.
		Limits: vendors.Limits{RequestsPerMinute: 4000, Burst: 100, MaxConcurrent: 16},
	}
}

// Client reads one Tines tenant.
type Client struct {
	api vendors.KeyAPI
}

var _ vendors.Client = (*Client)(nil)

// baseURL is the tenant's URL.
func baseURL(spec *v1alpha1.CredentialProviderSpec) (string, error) {
	return vendors.BaseURL("tines", spec.Tines.URL)
}

// newClient returns a client for the tenant in cfg.Spec.Tines.
func newClient(cfg vendors.Config) (vendors.Client, error) {
	base, err := baseURL(cfg.Spec)
	if err != nil {
		return nil, err
	}
	return &Client{api: vendors.NewKeyAPI(cfg, base, cfg.Spec.Tines.APIKeySecretRef, "Bearer")}, nil
}

// Get fetches one credential's metadata.
func (c *Client) Get(ctx context.Context, ref vendors.Ref) (*vendors.Credential, error) {
	id, err := vendors.PathSegment("id", ref.ID)
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, credentialsPath+"/"+id)
	if err != nil {
		return nil, err
	}
	return vendors.DecodeCredential[credential](c.api.Caller, resp, ref.ID)
}

// Verify lists one credential: the cheapest call that needs a valid key.
func (c *Client) Verify(ctx context.Context) error {
	_, err := c.get(ctx, credentialsPath+"?per_page=1")
	return err
}

// Close releases the client's connections.
func (c *Client) Close() { c.api.Caller.Close() }

const credentialsPath = "/api/v1/user_credentials"

// ListPage lists one page of the credentials the key can see, 500 at a
// time (the server may answer fewer), following meta.next_page: an
// absolute URL, followed only while it stays on the tenant's credentials
// list (the key is sent to it). The cursor is that URL.
func (c *Client) ListPage(ctx context.Context, _ *v1alpha1.Inventory, cursor string) (*vendors.Page, error) {
	u := cursor
	if u == "" {
		u = c.api.Base + credentialsPath + "?per_page=500&page=1"
	} else if !c.onList(u) {
		return nil, &vendors.Error{Class: vendors.ErrInvalidResponse, Message: "meta.next_page points away from the tenant's credentials list: not followed"}
	}
	resp, err := c.getURL(ctx, u)
	if err != nil {
		return nil, err
	}
	var body struct {
		Items *[]json.RawMessage `json:"user_credentials"`
		Meta  struct {
			NextPage *string `json:"next_page"`
		} `json:"meta"`
	}
	if err := c.api.Caller.DecodeJSON(resp, &body); err != nil {
		return nil, err
	}
	if body.Items == nil {
		// Not an empty page: an answer that would empty the inventory.
		return nil, c.api.Caller.Invalid(resp, "list answer has no user_credentials")
	}
	page := &vendors.Page{Items: make([]vendors.Item, 0, len(*body.Items))}
	for i, raw := range *body.Items {
		item, err := listItem(raw)
		if err != nil {
			return nil, c.api.Caller.Invalid(resp, "credential %d of the page: %v", i+1, err)
		}
		page.Items = append(page.Items, item)
	}
	if body.Meta.NextPage != nil {
		page.Next = *body.Meta.NextPage
	}
	return page, nil
}

// listItem maps one credential of a list answer like a Get answer. An item
// without expires_at or owner (their presence in list answers is not
// documented) cannot vouch for them: it is partial.
func listItem(raw json.RawMessage) (vendors.Item, error) {
	var b credential
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &b); err != nil {
		return vendors.Item{}, errors.New("not the documented JSON")
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return vendors.Item{}, errors.New("not a JSON object")
	}
	cred, err := b.Credential(b.ID.String())
	if err != nil {
		return vendors.Item{}, err
	}
	item := vendors.Item{Ref: vendors.Ref{ID: b.ID.String()}, Credential: cred}
	for _, f := range []string{"expires_at", "owner"} {
		if _, ok := fields[f]; !ok {
			item.Missing = append(item.Missing, f)
		}
	}
	return item, nil
}

// onList reports whether u is a page of the tenant's credentials list.
func (c *Client) onList(u string) bool { return vendors.OnList(u, c.api.Base+credentialsPath) }

// get sends an authenticated GET of path and returns a 2xx answer, or the
// error for any other.
func (c *Client) get(ctx context.Context, path string) (*vendors.Response, error) {
	return c.getURL(ctx, c.api.Base+path)
}

// getURL sends an authenticated GET of u and returns a 2xx answer, or the
// error for any other.
func (c *Client) getURL(ctx context.Context, u string) (*vendors.Response, error) {
	// Tines' error bodies vary by endpoint and are not documented: the
	// status alone says what happened.
	return c.api.Get(ctx, u, nil)
}

// credential is the documented answer. Only these fields are read:
// metadata, allowed_hosts and anything else the vendor adds are dropped.
type credential struct {
	ID              json.Number `json:"id"`
	Name            string      `json:"name"`
	Description     string      `json:"description"`
	Mode            string      `json:"mode"`
	TeamID          *int64      `json:"team_id"`
	FolderID        *int64      `json:"folder_id"`
	ReadAccess      string      `json:"read_access"`
	Slug            string      `json:"slug"`
	RestrictionType string      `json:"restriction_type"`
	CreatedAt       *string     `json:"created_at"`
	UpdatedAt       *string     `json:"updated_at"`
	ExpiresAt       *string     `json:"expires_at"`
	Owner           *struct {
		Email string `json:"email"`
	} `json:"owner"`
}

func (b *credential) Credential(id string) (*vendors.Credential, error) {
	if b.ID.String() == "" {
		return nil, fmt.Errorf("answer has no id")
	}
	if b.ID.String() != id {
		return nil, fmt.Errorf("answer is for credential %q, not %q", b.ID.String(), id)
	}
	created, err := vendors.ParseTime("created_at", b.CreatedAt)
	if err != nil {
		return nil, err
	}
	updated, err := vendors.ParseTime("updated_at", b.UpdatedAt)
	if err != nil {
		return nil, err
	}
	expires, err := vendors.ParseTime("expires_at", b.ExpiresAt)
	if err != nil {
		return nil, err
	}
	st := metadata{
		Mode:            b.Mode,
		TeamID:          b.TeamID,
		FolderID:        b.FolderID,
		ReadAccess:      b.ReadAccess,
		RestrictionType: b.RestrictionType,
		Slug:            b.Slug,
	}
	if b.Owner != nil {
		st.OwnerEmail = b.Owner.Email
	}
	return &vendors.Credential{
		Owner:       st.OwnerEmail,
		Name:        b.Name,
		Description: b.Description,
		CreatedAt:   created,
		UpdatedAt:   updated,
		ExpiresAt:   expires,
		Vendor:      &st,
	}, nil
}

// metadata is Tines' part of a RemoteCredential's status.
type metadata v1alpha1.TinesCredentialStatus

// ApplyTo writes status.tines.
func (m *metadata) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	st.Tines = (*v1alpha1.TinesCredentialStatus)(m).DeepCopy()
}
