// Package elasticcloud reads API key metadata from Elastic Cloud (ESS) and
// Elastic Cloud Enterprise (ECE): GET {url}/api/v1/users/auth/keys/{id} for
// the caller's own keys, or GET {url}/api/v1/users/{userId}/auth/keys/{id}
// (ECE) when the reference names the key's owner, with
// "Authorization: ApiKey <key>". The key is verified by listing the
// caller's own keys: GET {url}/api/v1/users/auth/keys.
package elasticcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// defaultURL is Elastic Cloud's API, used when the provider names no URL.
const defaultURL = "https://api.elastic-cloud.com"

// errorCodesHeader carries Elastic's error codes on every error answer.
const errorCodesHeader = "X-Cloud-Error-Codes"

// Vendor is Elastic Cloud's registration. A RemoteCredential's userId
// selects the ECE user-scoped endpoint.
func Vendor() vendors.Vendor {
	return vendors.Vendor{
		Name:     v1alpha1.VendorElasticCloud,
		Selected: func(spec *v1alpha1.CredentialProviderSpec) bool { return spec.ElasticCloud != nil },
		SecretRef: func(spec *v1alpha1.CredentialProviderSpec) vendors.SecretRef {
			return vendors.APIKeyRef(spec.ElasticCloud.APIKeySecretRef)
		},
		// A userId names the key's owner: ECE's user-scoped endpoint.
		CheckRef: func(vendors.Ref) error { return nil },
		URL:      baseURL,
		// Elastic Cloud's API; ECE installations are self-hosted.
		SaaSHosts: []string{"api.elastic-cloud.com"},
		New:       newClient,
	}
}

// Client reads one Elastic Cloud organization or ECE installation.
type Client struct {
	api vendors.KeyAPI
}

var _ vendors.Client = (*Client)(nil)

// newClient returns a client for the API in cfg.Spec.ElasticCloud: defaultURL
// when its URL is empty, else an https:// URL, possibly with a path prefix.
func newClient(cfg vendors.Config) (vendors.Client, error) {
	base, err := baseURL(cfg.Spec)
	if err != nil {
		return nil, err
	}
	return &Client{api: vendors.NewKeyAPI(cfg, base, cfg.Spec.ElasticCloud.APIKeySecretRef, "ApiKey")}, nil
}

// baseURL is the spec's URL, or Elastic Cloud's API without one.
func baseURL(spec *v1alpha1.CredentialProviderSpec) (string, error) {
	raw := spec.ElasticCloud.URL
	if raw == "" {
		raw = defaultURL
	}
	return vendors.BaseURL("elasticCloud", raw)
}

// Get fetches one API key's metadata. The answer's key field, when
// present, is never read.
func (c *Client) Get(ctx context.Context, ref vendors.Ref) (*vendors.Credential, error) {
	u, err := c.keyURL(ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	return vendors.DecodeCredential[apiKey](c.api.Caller, resp, ref.ID)
}

// Verify lists the caller's own keys: a call every valid key may make.
func (c *Client) Verify(ctx context.Context) error {
	_, err := c.get(ctx, c.api.Base+keysPath)
	return err
}

// Close releases the client's connections.
func (c *Client) Close() { c.api.Caller.Close() }

const keysPath = "/api/v1/users/auth/keys"

// ListPage lists the caller's own API keys, or with
// inventory.elasticCloud.allUsers every user's (ECE's _all). Elastic
// answers all keys at once: there is one page. With allUsers an item
// names its owner, as a RemoteCredential's userId would.
func (c *Client) ListPage(ctx context.Context, inv *v1alpha1.Inventory, _ string) (*vendors.Page, error) {
	allUsers := inv != nil && inv.ElasticCloud != nil && inv.ElasticCloud.AllUsers
	u := c.api.Base + keysPath
	if allUsers {
		u += "/_all"
	}
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	var body struct {
		Keys *[]apiKey `json:"keys"`
	}
	if err := c.api.Caller.DecodeJSON(resp, &body); err != nil {
		return nil, err
	}
	if body.Keys == nil {
		return nil, c.api.Caller.Invalid(resp, "list answer has no keys")
	}
	page := &vendors.Page{Items: make([]vendors.Item, 0, len(*body.Keys))}
	for i, k := range *body.Keys {
		cred, err := k.Credential(k.ID)
		if err != nil {
			return nil, c.api.Caller.Invalid(resp, "key %d of the list: %v", i+1, err)
		}
		ref := vendors.Ref{ID: k.ID}
		if allUsers {
			ref.UserID = k.UserID
		}
		page.Items = append(page.Items, vendors.Item{Ref: ref, Credential: cred})
	}
	return page, nil
}

// get sends an authenticated GET of u and returns a 2xx answer, or the
// error for any other.
func (c *Client) get(ctx context.Context, u string) (*vendors.Response, error) {
	return c.api.Get(ctx, u, func(resp *vendors.Response) (string, string) {
		return parseError(resp.Header, resp.Body)
	})
}

// keyURL is the own-key endpoint, or ECE's user-scoped one when ref names
// the owner.
func (c *Client) keyURL(ref vendors.Ref) (string, error) {
	id, err := vendors.PathSegment("id", ref.ID)
	if err != nil {
		return "", err
	}
	if ref.UserID == "" {
		return c.api.Base + keysPath + "/" + id, nil
	}
	user, err := vendors.PathSegment("userId", ref.UserID)
	if err != nil {
		return "", err
	}
	return c.api.Base + "/api/v1/users/" + user + "/auth/keys/" + id, nil
}

// apiKey is the documented answer (ApiKeyResponse). Only these fields are
// read: key (sent only at creation, a secret) and anything else the vendor
// adds are dropped.
type apiKey struct {
	ID             string  `json:"id"`
	UserID         string  `json:"user_id"`
	OrganizationID string  `json:"organization_id"`
	Description    string  `json:"description"`
	CreationDate   *string `json:"creation_date"`
	ExpirationDate *string `json:"expiration_date"`
}

// Credential maps the answer for key id. An Elastic API key has no name
// apart from its description, so the description is both Name and
// Description.
func (b *apiKey) Credential(id string) (*vendors.Credential, error) {
	if b.ID == "" {
		return nil, fmt.Errorf("answer has no id")
	}
	if b.ID != id {
		return nil, fmt.Errorf("answer is for API key %q, not %q", b.ID, id)
	}
	created, err := vendors.ParseTime("creation_date", b.CreationDate)
	if err != nil {
		return nil, err
	}
	if created == nil {
		return nil, fmt.Errorf("answer has no creation_date")
	}
	expires, err := vendors.ParseTime("expiration_date", b.ExpirationDate)
	if err != nil {
		return nil, err
	}
	return &vendors.Credential{
		Name:        b.Description,
		Description: b.Description,
		CreatedAt:   created,
		ExpiresAt:   expires,
		Owner:       b.UserID,
		Vendor:      &metadata{UserID: b.UserID, OrganizationID: b.OrganizationID},
	}, nil
}

// metadata is Elastic Cloud's part of a RemoteCredential's status.
type metadata v1alpha1.ElasticCloudCredentialStatus

// ApplyTo writes status.elasticCloud.
func (m *metadata) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	st.ElasticCloud = (*v1alpha1.ElasticCloudCredentialStatus)(m).DeepCopy()
}

// errorReply is Elastic's error answer (BasicFailedReply).
type errorReply struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// parseError returns the vendor's error code and message from a non-2xx
// answer: the errors[] codes joined with ", " (else the x-cloud-error-codes
// header) and their messages joined with "; ". A body of another shape (a
// proxy's HTML page) gives no message: it is not Elastic's documented words.
func parseError(h http.Header, body []byte) (code, message string) {
	var reply errorReply
	if json.Unmarshal(body, &reply) == nil {
		var codes, messages []string
		for _, e := range reply.Errors {
			if e.Code != "" {
				codes = append(codes, e.Code)
			}
			if e.Message != "" {
				messages = append(messages, e.Message)
			}
		}
		code, message = strings.Join(codes, ", "), strings.Join(messages, "; ")
	}
	if code == "" {
		code = strings.Join(h.Values(errorCodesHeader), ", ")
	}
	return code, message
}
