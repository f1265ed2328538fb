package httpvendor

import (
	"os"
	"strings"
	"testing"
)

// seedDefinition is a definition that uses every kind of expression.
const seedDefinition = `
url: https://vendor.example.com
hosts: [vendor.example.com]
auth: {type: Bearer}
params: [{name: team}]
keyCheck: {paths: [/api/me]}
get: {paths: ['/api/teams/{team}/keys/{id}', '/api/keys/{id}'], item: body.key}
list:
  paths: [/api/keys]
  query: {limit: "100"}
  items: body.keys
  pagination: {type: Cursor, param: after, next: 'has(body.next) ? body.next : ""'}
fields:
  id: string(item.id)
  name: item.name
  owner: 'has(item.owner) ? item.owner.email : params.team'
  createdAt: item.created
  expiresAt: 'has(item.expires) ? item.expires : null'
  lastUsedAt: 'has(item.last_used) ? item.last_used : null'
  active: 'item.state != "revoked"'
errors: {message: 'body.errors[0].message'}
costLimit: 5000
`

// The loader takes any bytes: a definition either loads, compiles and
// registers, or is an error; it never panics or hangs.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(seedDefinition))
	for _, name := range []string{"gitlab"} {
		if b, err := os.ReadFile("builtin/" + name + ".yaml"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(strings.Replace(seedDefinition, "item.name", "item.name +", 1)))
	f.Add([]byte(strings.Replace(seedDefinition, "/api/keys]", "/api/keys/{nope}]", 1)))
	f.Add([]byte("auth: {type: Bearer}\nkeyCheck: {paths: [/x]}\nfields: {id: '1'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Load("fuzz", data)
		if err != nil {
			return
		}
		v := d.Vendor()
		if v.Name != "fuzz" || v.New == nil {
			t.Fatalf("loaded definition registers as %+v", v)
		}
	})
}

// The mapping of untrusted answers: any body either maps or is an error
// that does not repeat the answer's text, within the cost limit.
func FuzzMapAnswer(f *testing.F) {
	d, err := Load("fuzz", []byte(seedDefinition))
	if err != nil {
		f.Fatal(err)
	}
	params := map[string]string{"team": "platform"}
	c := &Client{def: d, params: params, paramVars: d.paramVars(params)}
	for _, seed := range []string{
		`{"key":{"id":7,"name":"ci","owner":{"email":"a@example.com"},"created":"2026-01-02T03:04:05Z","expires":"2027-01-01","last_used":1767225600,"state":"active"}}`,
		`{"key":{"id":"k-1","name":null,"created":"yesterday"}}`,
		`{"key":{"id":1e300,"name":["x"],"state":"revoked","last_used":-1}}`,
		`{"key":"canary-secret-value-1234"}`,
		`{"keys":[{"id":1},{"id":2,"name":"b"}],"next":"abc"}`,
		`[1,2,3]`,
		`{"key":{"id":7,"name":"` + strings.Repeat("é", 100) + `"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := decodeJSON(data)
		if err != nil {
			return
		}
		check := func(err error) {
			if err != nil && len(data) >= 16 && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("error repeats the answer: %v", err)
			}
		}
		vars := map[string]any{"body": body}
		item, err := evalValue(d.getItem, vars)
		check(err)
		if err == nil {
			_, err = c.mapItem(item)
			check(err)
		}
		items, err := evalList(d.listItems, vars)
		check(err)
		for _, it := range items {
			_, err := c.mapItem(it)
			check(err)
		}
		_, err = evalString(d.next, map[string]any{"body": body, "headers": map[string]string{}})
		check(err)
		msg, _ := evalString(d.errMessage, vars)
		_ = msg // the message is the vendor's words: cleaned and capped by vendors.Caller.Fail
	})
}

// A mapping over its cost limit fails with a message that says so.
func TestCostLimit(t *testing.T) {
	d, err := Load("costly", []byte(strings.Replace(seedDefinition, "name: item.name", "name: '[1,2,3,4,5,6,7,8,9,10].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, x*y)).size() > 0 ? item.name : \"\"'", 1)))
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(20)
	d.Spec.CostLimit = &limit
	d, err = Compile("costly", d.Spec)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{def: d, paramVars: d.paramVars(nil)}
	_, err = c.mapItem(map[string]any{"id": int64(1), "name": "x", "created": "2026-01-02T03:04:05Z", "state": "active"})
	if err == nil || !strings.Contains(err.Error(), "fields.name exceeded the definition's CEL cost limit") {
		t.Fatalf("err = %v, want the cost limit named", err)
	}
	// Without the limit it maps.
	d.Spec.CostLimit = nil
	d, _ = Compile("costly", d.Spec)
	if it, err := (&Client{def: d, paramVars: d.paramVars(nil)}).mapItem(map[string]any{"id": int64(1), "name": "x", "created": "2026-01-02T03:04:05Z", "state": "active"}); err != nil || it.Credential.Name != "x" {
		t.Fatalf("under the default limit: %+v, %v", it, err)
	}
}
