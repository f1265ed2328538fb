package account

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/tines"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	goodKey = "account-test-key-0001"
	newKey  = "account-test-key-0002"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// objects is an in-memory Getter of Secrets and providers: the
// account's decisions are tested here; envtest tests its wiring.
type objects struct {
	mu sync.Mutex
	m  map[types.NamespacedName]Object
}

func (o *objects) put(obj Object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[types.NamespacedName]Object{}
	}
	o.m[keyOf(obj)] = obj.DeepCopyObject().(Object)
}

func (o *objects) Get(_ context.Context, key types.NamespacedName, obj Object) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	src, ok := o.m[key]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
	}
	switch dst := obj.(type) {
	case *corev1.Secret:
		*dst = *src.(*corev1.Secret).DeepCopy()
	case *v1alpha1.CredentialProvider:
		*dst = *src.(*v1alpha1.CredentialProvider).DeepCopy()
	default:
		return errors.New("unexpected type")
	}
	return nil
}

// env is one account under test: a fake Tines tenant, its provider and
// Secret, and a fake clock.
type env struct {
	t        *testing.T
	fake     *tinestest.Server
	clock    *clocktesting.FakeClock
	objs     *objects
	accounts *Accounts
	provider *v1alpha1.CredentialProvider
	changes  atomic.Int32
	suspects atomic.Int32
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, fake: tinestest.NewServer(goodKey), clock: clocktesting.NewFakeClock(t0), objs: &objects{}}
	t.Cleanup(e.fake.Close)
	reg := vendors.NewRegistry(tines.Vendor())
	reg.Destinations = vendortest.Loopback()
	reg.Timeout = 2 * time.Second
	e.accounts = New(Options{
		Registry: reg, Reader: e.objs.Get, SecretReader: e.objs.Get, Clock: e.clock,
		OnChange:  func(Key) { e.changes.Add(1) },
		OnSuspect: func(Key) { e.suspects.Add(1) },
	})
	e.provider = &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.CredentialProviderSpec{
			Tines:     &v1alpha1.TinesProvider{URL: e.fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
			CABundle:  e.fake.CABundle(),
			RateLimit: &v1alpha1.RateLimit{RequestsPerMinute: 1000000, Burst: 100000, MaxConcurrent: 64},
		},
	}
	e.objs.put(e.provider)
	e.setKey(goodKey)
	return e
}

func (e *env) setKey(k string) {
	e.objs.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api", Labels: map[string]string{v1alpha1.ProviderSecretLabel: "true"}},
		Data: map[string][]byte{"apiKey": []byte(k)}})
}

func (e *env) key() Key { return KeyOf(e.provider) }

func (e *env) check() Status {
	e.t.Helper()
	st, err := e.accounts.Check(context.Background(), e.provider)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) lookup() Lookup {
	e.t.Helper()
	lk, err := e.accounts.Lookup(context.Background(), e.key())
	if err != nil {
		e.t.Fatal(err)
	}
	return lk
}

// credential puts a credential at the fake and returns its reference.
func (e *env) credential(id int64) vendors.Ref {
	e.fake.Put(tinestest.Sample(id, "cred-"+strconv.FormatInt(id, 10)))
	return vendors.Ref{ID: strconv.FormatInt(id, 10)}
}

// read reads ref as the reader 1.
func (e *env) read(ref vendors.Ref, maxAge time.Duration, after time.Time) (*vendors.Credential, time.Time, error) {
	e.t.Helper()
	return e.readAs(1, ref, maxAge, after)
}

func (e *env) readAs(reader uint64, ref vendors.Ref, maxAge time.Duration, after time.Time) (*vendors.Credential, time.Time, error) {
	e.t.Helper()
	lk := e.lookup()
	if lk.Unavailable != nil {
		return nil, time.Time{}, lk.Unavailable
	}
	return unpick(lk.Account.Read(context.Background(), ref, reader, maxAge, after))
}

// unpick turns an Observation into the read's answer, when it was read,
// and what stood in its way, for the tests' checks.
func unpick(o Observation) (*vendors.Credential, time.Time, error) {
	switch {
	case o.Unavailable != nil:
		return nil, o.ReadAt, o.Unavailable
	case o.Deferred != nil:
		return nil, o.ReadAt, o.Deferred
	}
	return o.Credential, o.ReadAt, o.Err
}

func TestLookupBeforeTheFirstCheck(t *testing.T) {
	e := newEnv(t)
	if lk := e.lookup(); !errors.Is(lk.Unavailable, ErrPending) || lk.Account != nil {
		t.Fatalf("provider not checked yet: %+v, want ErrPending", lk)
	}
	lk, err := e.accounts.Lookup(context.Background(), Key{Kind: v1alpha1.CredentialProviderKind, Namespace: "team-a", Name: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if pe, ok := AsProviderError(lk.Unavailable); !ok || pe.Reason != v1alpha1.ReasonNotFound || pe.Message != "CredentialProvider team-a/missing not found" {
		t.Fatalf("missing provider: %v", lk.Unavailable)
	}
}

// The provider's key is checked with one cheap call when the account is
// built; reads wait for that check.
func TestCheckVerifiesTheKeyOnce(t *testing.T) {
	e := newEnv(t)
	st := e.check()
	if st.Reason != v1alpha1.ReasonValid || st.Recheck != recheckInterval {
		t.Fatalf("status %+v, want Valid, recheck in %s", st, recheckInterval)
	}
	if n := e.fake.ListCalls(); n != 1 {
		t.Fatalf("%d verification calls, want 1", n)
	}
	if e.changes.Load() != 1 {
		t.Fatalf("OnChange called %d times, want once (the check concluded)", e.changes.Load())
	}
	lk := e.lookup()
	if lk.Unavailable != nil || lk.Epoch != 0 || lk.Account.Vendor() != v1alpha1.VendorTines {
		t.Fatalf("lookup %+v, epoch %d: want a usable account of epoch 0", lk, lk.Epoch)
	}
	e.clock.Step(recheckInterval)
	e.check()
	if n := e.fake.ListCalls(); n != 1 {
		t.Fatalf("re-checked an accepted key with the vendor: %d calls", n)
	}
}

// Reads share answers: a RemoteCredential reuses an answer younger than
// its own interval and newer than its own last read, so one refreshing
// every 10s never shows the hourly one's old answer, and the hourly one
// reuses the 10s one's fresh answer. An answer only one reader asked for
// is not kept: a second reader reads once, then they share.
func TestReadsWithMixedIntervals(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(7)
	const fast, slow = 10 * time.Second, time.Hour
	const hourly, tenSeconds = 1, 2
	calls := func() int { return e.fake.Calls("7") }

	// The hourly reader reads first: the only reader, nothing is kept.
	_, slowRead, err := e.readAs(hourly, ref, slow, time.Time{})
	if err != nil || calls() != 1 || !slowRead.Equal(t0) {
		t.Fatalf("first read: %v, %d calls at %s", err, calls(), slowRead)
	}
	if n := e.lookup().Account.store.answers[ref]; n.held() {
		t.Fatal("an answer only one reader asked for is kept")
	}
	// The 10s reader, new: it reads once; from now on answers are kept.
	e.clock.Step(time.Second)
	_, fastRead, err := e.readAs(tenSeconds, ref, fast, time.Time{})
	if err != nil || calls() != 2 || !fastRead.Equal(t0.Add(time.Second)) {
		t.Fatalf("second reader: %v, %d calls at %s", err, calls(), fastRead)
	}
	c := tinestest.Sample(7, "renamed")
	e.fake.Put(c)
	// Ten seconds on, the 10s reader reads again: the answer it has seen
	// is not newer than its last read.
	e.clock.Step(fast)
	cred, at, err := e.readAs(tenSeconds, ref, fast, fastRead)
	if err != nil || cred.Name != "renamed" || !at.Equal(fastRead.Add(fast)) || calls() != 3 {
		t.Fatalf("10s later: %v %v at %s after %d calls, want the vendor's new answer", cred, err, at, calls())
	}
	fastRead = at
	// Half an hour on, without the 10s reader, an answer of 30 minutes is
	// too old for it but fine for the hourly reader.
	e.clock.Step(30 * time.Minute)
	if cred, at, _ := e.readAs(hourly, ref, slow, slowRead); !at.Equal(fastRead) || cred.Name != "renamed" || calls() != 3 {
		t.Fatalf("hourly reader: read at %s with %d calls, want the 10s reader's answer", at, calls())
	}
	if _, at, _ := e.readAs(tenSeconds, ref, fast, fastRead); !at.Equal(e.clock.Now()) || calls() != 4 {
		t.Fatalf("10s reader after 30m: read at %s with %d calls, want a new read", at, calls())
	}
	// A sync that must read afresh (maxAge 0) always calls.
	if _, _, err := e.readAs(hourly, ref, 0, time.Time{}); err != nil || calls() != 5 {
		t.Fatalf("fresh read: %v, %d calls", err, calls())
	}
}

// Concurrent reads of one credential are one call.
func TestConcurrentReadsCoalesce(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(8)
	e.fake.FailNext("8", vendortest.Latency(300*time.Millisecond))
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := e.read(ref, 0, time.Time{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.fake.Calls("8"); n != 1 {
		t.Fatalf("10 concurrent reads made %d calls", n)
	}
}

// A 404 is kept like metadata: once two RemoteCredentials name the
// deleted credential, they share it. Transient failures are not kept.
func TestTerminalAnswersAreKept(t *testing.T) {
	e := newEnv(t)
	e.check()
	gone := vendors.Ref{ID: "404"}
	if _, _, err := e.readAs(1, gone, time.Hour, time.Time{}); !errors.Is(err, vendors.ErrNotFound) {
		t.Fatalf("got %v, want not found", err)
	}
	e.clock.Step(time.Second)
	if _, _, err := e.readAs(2, gone, time.Hour, time.Time{}); !errors.Is(err, vendors.ErrNotFound) || e.fake.Calls("404") != 2 {
		t.Fatalf("second reader: %v after %d calls, want its own read", err, e.fake.Calls("404"))
	}
	e.clock.Step(time.Second)
	if _, _, err := e.readAs(1, gone, time.Hour, t0); !errors.Is(err, vendors.ErrNotFound) || e.fake.Calls("404") != 2 {
		t.Fatalf("first reader again: %v after %d calls, want the kept 404", err, e.fake.Calls("404"))
	}
	ref := e.credential(9)
	e.fake.FailNext("9", vendortest.ServerError)
	if _, _, err := e.read(ref, time.Hour, time.Time{}); !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
	if _, _, err := e.read(ref, time.Hour, time.Time{}); err != nil || e.fake.Calls("9") != 2 {
		t.Fatalf("after a 500: %v with %d calls, want a new read", err, e.fake.Calls("9"))
	}
}

// A reference the vendor cannot read is refused without a call.
func TestReadChecksTheReference(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(10)
	ref.UserID = "u-1"
	if _, _, err := e.read(ref, time.Hour, time.Time{}); !errors.Is(err, vendors.ErrInvalidSpec) {
		t.Fatalf("userId on tines: %v, want ErrInvalidSpec", err)
	}
	if e.fake.Calls("10") != 0 {
		t.Fatal("an invalid reference reached the vendor")
	}
}

// A refused key makes the provider Unauthorized and blocks every read
// without calling the vendor; the key is checked again once per backoff
// step; a rotated Secret is checked at once, and turning usable again
// moves the epoch (its credentials sync at once).
func TestRefusedKeyThenRotated(t *testing.T) {
	e := newEnv(t)
	e.setKey("revoked-key-canary-0003")
	st := e.check()
	if st.Reason != v1alpha1.ReasonUnauthorized || !st.Terminal {
		t.Fatalf("status %+v, want Unauthorized, terminal", st)
	}
	if st.Recheck < 4*time.Second || st.Recheck > 6*time.Second {
		t.Fatalf("recheck in %s, want the first backoff step (5s ±10%%)", st.Recheck)
	}
	refusedEpoch := e.lookup().Epoch
	if refusedEpoch == 0 {
		t.Fatal("turning refused did not move the epoch: credentials would keep showing Ready")
	}
	ref := e.credential(11)
	_, _, err := e.read(ref, time.Hour, time.Time{})
	if pe, ok := AsProviderError(err); !ok || pe.Reason != v1alpha1.ReasonUnauthorized {
		t.Fatalf("read with a refused key: %v, want a ProviderError", err)
	}
	if e.fake.Calls("11") != 0 {
		t.Fatal("a read with a refused key reached the vendor")
	}
	// Checks between steps read the Secret but do not call the vendor.
	e.clock.Step(time.Second)
	e.check()
	if n := e.fake.ListCalls(); n != 1 {
		t.Fatalf("%d verification calls within the first step, want 1", n)
	}
	steps := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second}
	for i, step := range steps {
		e.clock.Step(step * 11 / 10)
		e.check()
		if n := e.fake.ListCalls(); n != i+2 {
			t.Fatalf("after step %d: %d verification calls, want %d", i+1, n, i+2)
		}
	}
	e.setKey(goodKey)
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("after rotation: %+v", st)
	}
	lk := e.lookup()
	if lk.Unavailable != nil || lk.Epoch == refusedEpoch {
		t.Fatalf("after rotation: %+v, epoch %d: want usable, a new epoch", lk, lk.Epoch)
	}
	if _, _, err := e.read(ref, time.Hour, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// A 401 on a credential read makes the account check its key again, and
// reads wait for that check; when the vendor still accepts the key, the
// epoch stays: only that credential was refused.
func TestUnauthorizedReadTriggersACheck(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(12)
	e.fake.FailNext("12", vendortest.Unauthorized)
	if _, _, err := e.read(ref, time.Hour, time.Time{}); !errors.Is(err, vendors.ErrUnauthorized) {
		t.Fatalf("got %v, want unauthorized", err)
	}
	if e.suspects.Load() != 1 {
		t.Fatalf("OnSuspect called %d times, want once", e.suspects.Load())
	}
	if lk := e.lookup(); !errors.Is(lk.Unavailable, ErrPending) {
		t.Fatalf("after a 401: %v, want reads to wait for the check", lk.Unavailable)
	}
	epoch := e.lookup().Epoch
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("check: %+v", st)
	}
	if n := e.fake.ListCalls(); n != 2 {
		t.Fatalf("%d verification calls, want 2", n)
	}
	if lk := e.lookup(); lk.Unavailable != nil || lk.Epoch != epoch {
		t.Fatalf("key still accepted: %+v, epoch %d (was %d)", lk, lk.Epoch, epoch)
	}
}

// A check that gets no answer proves nothing: reads go on, the provider
// shows why, and the check is retried on a backoff.
func TestUnansweredCheck(t *testing.T) {
	e := newEnv(t)
	e.fake.FailNext(tinestest.ListID, vendortest.ServerError)
	st := e.check()
	if st.Reason != v1alpha1.ReasonVendorUnavailable || st.Terminal {
		t.Fatalf("status %+v, want VendorUnavailable, transient", st)
	}
	if lk := e.lookup(); lk.Unavailable != nil {
		t.Fatalf("reads blocked by an unanswered check: %v", lk.Unavailable)
	}
	e.clock.Step(6 * time.Second)
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("retry: %+v", st)
	}
}

// A new Secret builds a new client (the old one closed), starts an empty
// read store and moves the epoch; a budget edit does neither.
func TestSecretChangeRebuilds(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(13)
	if _, _, err := e.read(ref, time.Hour, time.Time{}); err != nil {
		t.Fatal(err)
	}
	a := e.lookup().Account
	old := a.client

	e.provider.Spec.RateLimit.Burst = 500
	e.provider.Generation++
	e.check()
	if a.client != old || a.epoch != 0 {
		t.Fatal("a budget edit rebuilt the client")
	}

	e.fake.SetAPIKey(newKey)
	e.setKey(newKey)
	changes := e.changes.Load()
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("after rotation: %+v", st)
	}
	if a.client == old || a.epoch == 0 || e.changes.Load() == changes {
		t.Fatalf("rotation: client rebuilt %v, epoch %d, OnChange %d→%d", a.client != old, a.epoch, changes, e.changes.Load())
	}
	if _, err := old.Get(context.Background(), ref); !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("the old client still works after the rebuild: %v", err)
	}
	if _, _, err := e.read(ref, time.Hour, time.Time{}); err != nil || e.fake.Calls("13") != 2 {
		t.Fatalf("read after rotation: %v with %d calls, want a new read with the new key", err, e.fake.Calls("13"))
	}
}

// A Secret that disappears makes the account unusable until it is back.
func TestMissingSecret(t *testing.T) {
	e := newEnv(t)
	e.provider.Spec.Tines.APIKeySecretRef.Name = "other"
	st := e.check()
	if st.Reason != v1alpha1.ReasonSecretNotFound || st.Terminal || st.Recheck != notReadyRetry {
		t.Fatalf("status %+v", st)
	}
	if pe, ok := AsProviderError(e.lookup().Unavailable); !ok || pe.Reason != v1alpha1.ReasonSecretNotFound {
		t.Fatalf("lookup: %v", e.lookup().Unavailable)
	}
	e.provider.Spec.Tines.APIKeySecretRef.Name = "tines-api"
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("status %+v", st)
	}
}

// withInventory turns the provider's inventory on, every interval.
func (e *env) withInventory(interval time.Duration) {
	e.provider.Spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: interval}}
}

func (e *env) sweep() SweepResult {
	e.t.Helper()
	return e.lookup().Account.Sweep(context.Background())
}

// With inventory on, reads wait for the first sweep, which then serves
// them without a GET each; a credential a later sweep no longer lists is
// dropped from the store and marked for a confirming read.
func TestSweepServesReads(t *testing.T) {
	e := newEnv(t)
	e.withInventory(10 * time.Minute)
	refs := []vendors.Ref{e.credential(20), e.credential(21), e.credential(22)}
	e.fake.SetMaxPerPage(2)
	e.check()
	if lk := e.lookup(); !errors.Is(lk.Unavailable, ErrPending) {
		t.Fatalf("before the first sweep: %v, want reads to wait for it", lk.Unavailable)
	}
	changes := e.changes.Load()
	res := e.sweep()
	if !res.Completed || res.Err != nil || res.Listing == nil || len(res.Listing.Items) != 3 {
		t.Fatalf("sweep: %+v", res)
	}
	if n := e.fake.ListCalls(); n != 1+2 {
		t.Fatalf("%d list calls, want the key check and 2 pages", n)
	}
	if e.changes.Load() != changes+1 {
		t.Fatal("the first sweep did not wake the reads that waited for it")
	}
	if d := res.Next; d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("next sweep in %s, want the interval ±10%%", d)
	}
	for _, ref := range refs {
		cred, at, err := e.read(ref, time.Hour, time.Time{})
		if err != nil || cred.Name != "cred-"+ref.ID || !at.Equal(t0) {
			t.Fatalf("read %s: %v %v at %s, want the sweep's answer", ref.ID, cred, err, at)
		}
		if n := e.fake.Calls(ref.ID); n != 0 {
			t.Fatalf("%d GETs of %s, served by the sweep", n, ref.ID)
		}
	}
	if r := e.sweep(); r.Completed || r.Listing == nil {
		t.Fatalf("a sweep before the interval: %+v", r)
	}

	e.fake.Delete(21)
	e.clock.Step(11 * time.Minute)
	res = e.sweep()
	if !res.Completed || res.Unlisted != 1 || len(res.Listing.Items) != 2 {
		t.Fatalf("second sweep: %+v", res)
	}
	a := e.lookup().Account
	if got := a.UnlistedAt(refs[1]); !got.Equal(t0.Add(11 * time.Minute)) {
		t.Fatalf("UnlistedAt = %s", got)
	}
	if !a.UnlistedAt(refs[0]).IsZero() {
		t.Fatal("a listed credential is marked unlisted")
	}
	if _, _, err := e.read(refs[1], time.Hour, time.Time{}); !errors.Is(err, vendors.ErrNotFound) || e.fake.Calls(refs[1].ID) != 1 {
		t.Fatalf("read of the unlisted credential: %v after %d GETs, want one GET confirming it gone", err, e.fake.Calls(refs[1].ID))
	}
}

// A 429 mid-sweep pauses it with the provider; it resumes from the same
// page, and no listing is published before it completes.
func TestSweepResumesAfterRateLimit(t *testing.T) {
	e, res := pausedSweep(t, 30, 6)
	if res.Listing != nil || res.Completed || res.Err != nil {
		t.Fatalf("after a 429 on page 3: %+v, want no listing and no error", res)
	}
	if res.Next < 30*time.Second {
		t.Fatalf("resume in %s, before Retry-After", res.Next)
	}
	if r := e.sweep(); r.Listing != nil || e.fake.ListCalls() != 4 {
		t.Fatalf("during the pause: %+v after %d list calls", r, e.fake.ListCalls())
	}
	e.clock.Step(31 * time.Second)
	res = e.sweep()
	if !res.Completed || len(res.Listing.Items) != 6 {
		t.Fatalf("resumed: %+v", res)
	}
	if n := e.fake.ListCalls(); n != 1+6+1 {
		t.Fatalf("%d list calls, want the key check, 6 pages and the refused one", n)
	}
}

// A sweep that fails does not block reads: they go by GET meanwhile, and
// the sweep is retried on a backoff.
func TestSweepFailureLetsReadsGo(t *testing.T) {
	e := newEnv(t)
	e.withInventory(time.Hour)
	ref := e.credential(40)
	e.check()
	e.fake.Set(tinestest.ListID, vendortest.Forbidden)
	res := e.sweep()
	if !errors.Is(res.Err, vendors.ErrForbidden) || res.Listing != nil {
		t.Fatalf("sweep: %+v, want forbidden", res)
	}
	if res.Next < 4*time.Second || res.Next > 6*time.Second {
		t.Fatalf("retry in %s, want the first backoff step", res.Next)
	}
	if _, _, err := e.read(ref, time.Hour, time.Time{}); err != nil || e.fake.Calls(ref.ID) != 1 {
		t.Fatalf("read: %v after %d GETs, want one GET", err, e.fake.Calls(ref.ID))
	}
}

// Pagination that never ends stops with an invalid response.
func TestSweepStopsEndlessPagination(t *testing.T) {
	e := newEnv(t)
	e.withInventory(time.Hour)
	e.credential(50)
	e.credential(51)
	e.fake.SetMaxPerPage(1)
	e.fake.SetNextPageLoop(true)
	e.check()
	res := e.sweep()
	if !errors.Is(res.Err, vendors.ErrInvalidResponse) || res.Listing != nil {
		t.Fatalf("sweep: %+v, want an invalid response", res)
	}
}

// A 401 on a page makes the provider check its key again, and reads wait
// for that check; the sweep fails as Unauthorized.
func TestSweepUnauthorizedChecksTheKey(t *testing.T) {
	e := newEnv(t)
	e.withInventory(time.Hour)
	e.credential(60)
	e.check()
	e.fake.FailNext(tinestest.ListID, vendortest.Unauthorized)
	res := e.sweep()
	if !errors.Is(res.Err, vendors.ErrUnauthorized) {
		t.Fatalf("sweep: %+v, want unauthorized", res)
	}
	if e.suspects.Load() != 1 || !errors.Is(e.lookup().Unavailable, ErrPending) {
		t.Fatalf("after a 401 on a page: OnSuspect %d, reads %v; want a key check, reads waiting", e.suspects.Load(), e.lookup().Unavailable)
	}
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("the key check: %+v", st)
	}
}

// endless is a vendor client whose list never ends: every page names a
// next one never seen before.
type endless struct{ vendors.Client }

func (endless) Verify(context.Context) error { return nil }
func (endless) Close()                       {}
func (endless) ListPage(_ context.Context, _ *v1alpha1.Inventory, cursor string) (*vendors.Page, error) {
	n, _ := strconv.Atoi(cursor)
	return &vendors.Page{Next: strconv.Itoa(n + 1)}, nil
}

// A list that never ends stops after 10,000 pages with an invalid response.
func TestSweepStopsAfterMaxPages(t *testing.T) {
	e := newEnv(t)
	reg := vendors.NewRegistry(vendors.Vendor{
		Name: "stub", Selected: func(s *v1alpha1.CredentialProviderSpec) bool { return s.Tines != nil },
		SecretRef: func(*v1alpha1.CredentialProviderSpec) vendors.SecretRef {
			return vendors.SecretRef{Name: "tines-api", Keys: []string{"apiKey"}}
		},
		URL: func(*v1alpha1.CredentialProviderSpec) (string, error) { return "https://127.0.0.1", nil },
		New: func(vendors.Config) (vendors.Client, error) { return endless{}, nil },
	})
	reg.Destinations = vendortest.Loopback()
	e.accounts = New(Options{Registry: reg, Reader: e.objs.Get, SecretReader: e.objs.Get, Clock: e.clock})
	e.withInventory(time.Hour)
	e.check()
	res := e.sweep()
	if !errors.Is(res.Err, vendors.ErrInvalidResponse) || !strings.Contains(res.Err.Error(), "did not end after 10000 pages") || res.Listing != nil {
		t.Fatalf("sweep: %+v", res)
	}
}

func (o *objects) remove(obj Object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, keyOf(obj))
}

func keyOf(obj Object) types.NamespacedName {
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// A deleted provider moves the epoch (its credentials show it at once),
// tells OnChange, and an account a read already holds answers NotFound
// instead of calling a closed client. Created again, it is a new epoch.
func TestDeletedProvider(t *testing.T) {
	e := newEnv(t)
	e.check()
	ref := e.credential(21)
	held := e.lookup()
	if held.Unavailable != nil || held.Epoch != 0 {
		t.Fatalf("lookup %+v: want usable, epoch 0", held)
	}
	changes := e.changes.Load()
	e.objs.remove(e.provider)
	e.accounts.Drop(e.key())
	if e.changes.Load() == changes {
		t.Error("OnChange not told of the deletion")
	}
	_, _, err := unpick(held.Account.Read(context.Background(), ref, 1, time.Hour, time.Time{}))
	if pe, ok := AsProviderError(err); !ok || pe.Reason != v1alpha1.ReasonNotFound {
		t.Fatalf("read through a held account: %v, want NotFound", err)
	}
	gone := e.lookup()
	if pe, ok := AsProviderError(gone.Unavailable); !ok || pe.Reason != v1alpha1.ReasonNotFound || gone.Epoch == held.Epoch {
		t.Fatalf("lookup after deletion %+v: want NotFound with a new epoch", gone)
	}
	e.objs.put(e.provider)
	e.check()
	back := e.lookup()
	if back.Unavailable != nil || back.Epoch == gone.Epoch || back.Epoch == held.Epoch {
		t.Fatalf("lookup after re-creation %+v (epochs %d, %d): want usable with a new epoch", back, held.Epoch, gone.Epoch)
	}
	if e.fake.Calls("21") != 0 {
		t.Errorf("%d vendor calls, want none", e.fake.Calls("21"))
	}
}

// A provider whose Secret disappears moves the epoch once (its credentials
// show ProviderNotReady at once), not at every check that finds it gone.
func TestLostSecretMovesTheEpochOnce(t *testing.T) {
	e := newEnv(t)
	e.check()
	e.objs.remove(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api"}})
	changes := e.changes.Load()
	if st := e.check(); st.Reason == v1alpha1.ReasonValid {
		t.Fatalf("check without a Secret: %+v", st)
	}
	lost := e.lookup()
	if _, ok := AsProviderError(lost.Unavailable); !ok || lost.Epoch == 0 || e.changes.Load() != changes+1 {
		t.Fatalf("lookup %+v, OnChange %d→%d: want blocked, a new epoch, one change", lost, changes, e.changes.Load())
	}
	e.clock.Step(time.Minute)
	e.check()
	if again := e.lookup(); again.Epoch != lost.Epoch || e.changes.Load() != changes+1 {
		t.Fatalf("the same failure moved the epoch %d→%d (OnChange %d)", lost.Epoch, again.Epoch, e.changes.Load())
	}
	e.setKey(goodKey)
	e.check()
	if back := e.lookup(); back.Unavailable != nil || back.Epoch == lost.Epoch {
		t.Fatalf("Secret restored: %+v, want usable with a new epoch", back)
	}
}

// An edited inventory takes effect without waiting out the old interval:
// a shorter interval brings the next sweep forward, and a change of what
// is listed sweeps at once. A manager with inventory disabled (another
// one sweeps) neither sweeps nor holds reads back for a sweep.
func TestInventoryEdits(t *testing.T) {
	e := newEnv(t)
	e.withInventory(time.Hour)
	e.credential(30)
	e.check()
	if res := e.sweep(); !res.Completed {
		t.Fatalf("first sweep: %+v", res)
	}
	e.withInventory(10 * time.Minute)
	e.check()
	if res := e.sweep(); res.Completed || res.Next > 10*time.Minute {
		t.Fatalf("after shortening the interval: %+v, want the next sweep within 10m", res)
	}
	e.provider.Spec.Inventory.Adopt = true
	e.check()
	if res := e.sweep(); res.Completed {
		t.Fatalf("turning adopt on swept again: %+v", res)
	}
	// Tines has no inventory block; a vendor's block (e.g. PlainID owner
	// IDs) is the scope. Any change of it sweeps at once.
	e.provider.Spec.Inventory.PlainID = &v1alpha1.PlainIDInventory{OwnerIDs: []string{"-"}}
	e.check()
	if res := e.sweep(); !res.Completed {
		t.Fatalf("after a change of scope: %+v, want a sweep now", res)
	}

	d := newEnv(t)
	d.accounts.opts.DisableInventory = true
	d.withInventory(time.Minute)
	d.check()
	if lk := d.lookup(); lk.Unavailable != nil {
		t.Fatalf("reads wait for a sweep this manager never makes: %v", lk.Unavailable)
	}
	if res := d.sweep(); res.Listing != nil || d.fake.ListCalls() != 1 {
		t.Fatalf("a manager with inventory disabled swept: %+v, %d list calls", res, d.fake.ListCalls())
	}
}

// pausedSweep is an account with inventory on over n credentials from
// first, listed one per page, whose first sweep got a 429 (Retry-After
// 30s) on page 3: the key check and two pages went through.
func pausedSweep(t *testing.T, first int64, n int) (*env, SweepResult) {
	t.Helper()
	e := newEnv(t)
	e.withInventory(time.Hour)
	for i := range n {
		e.credential(first + int64(i))
	}
	e.fake.SetMaxPerPage(1)
	ok := vendortest.Fault{}
	e.fake.FailNext(tinestest.ListID, ok, ok, ok, vendortest.RateLimited("30"))
	e.check()
	return e, e.sweep()
}

// A sweep paused half-way (a 429 on page 3) whose scope is edited
// meanwhile starts over under the new scope: the old cursor means nothing
// there, and a listing of half of each would be wrong.
func TestScopeChangeRestartsAPausedSweep(t *testing.T) {
	e, res := pausedSweep(t, 70, 4)
	if res.Completed || res.Listing != nil {
		t.Fatalf("after a 429 on page 3: %+v", res)
	}
	e.provider.Spec.Inventory.PlainID = &v1alpha1.PlainIDInventory{OwnerIDs: []string{"-"}}
	e.check()
	e.clock.Step(31 * time.Second)
	calls := e.fake.ListCalls()
	res = e.sweep()
	if !res.Completed || len(res.Listing.Items) != 4 {
		t.Fatalf("after the pause: %+v", res)
	}
	if n := e.fake.ListCalls() - calls; n != 4 {
		t.Fatalf("%d pages after the edit, want all 4 (from the first page, not from page 3)", n)
	}
}

// A provider that cannot read (here: its Secret is gone) leaves the sweep
// nothing to schedule: its own check decides when to look again, not a
// 5s sweep retry.
func TestUnusableAccountSchedulesNoSweep(t *testing.T) {
	e := newEnv(t)
	e.withInventory(time.Hour)
	e.check()
	e.provider.Spec.Tines.APIKeySecretRef.Name = "other"
	if st := e.check(); st.Reason != v1alpha1.ReasonSecretNotFound {
		t.Fatalf("check: %+v", st)
	}
	res := e.sweep()
	if pe, ok := AsProviderError(res.Err); !ok || pe.Reason != v1alpha1.ReasonSecretNotFound || res.Next != 0 {
		t.Fatalf("sweep: %+v, want SecretNotFound and no sweep retry of its own", res)
	}
}

// A credential listed twice in one sweep (offsets shift when credentials
// come and go during it) counts once, as its later answer.
func TestSweepCountsACredentialOnce(t *testing.T) {
	item := func(id, name string) vendors.Item {
		return vendors.Item{Ref: vendors.Ref{ID: id}, Credential: &vendors.Credential{Name: name}}
	}
	s := &sweep{}
	s.add([]vendors.Item{item("1", "a"), item("2", "b")})
	s.add([]vendors.Item{item("2", "b2"), item("3", "c")})
	var got []string
	for _, it := range s.items {
		got = append(got, it.Ref.ID+"="+it.Credential.Name)
	}
	if want := []string{"1=a", "2=b2", "3=c"}; !slices.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
}

// The next sweep is due an interval after the last one started, however
// long that one took to list, and a tenth of the interval after it
// completed at the soonest.
func TestNextSweep(t *testing.T) {
	const interval = 10 * time.Minute
	for _, tc := range []struct {
		name     string
		took     time.Duration
		min, max time.Duration // from t0, the last sweep's start
	}{
		{"quick", time.Second, 9 * time.Minute, 11 * time.Minute},
		{"slow", 4 * time.Minute, 9 * time.Minute, 11 * time.Minute},
		{"longer than the interval", 20 * time.Minute, 21 * time.Minute, 21 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := nextSweep(t0, t0.Add(tc.took), interval, "CredentialProvider/ns/p")
			if d := next.Sub(t0); d < tc.min || d > tc.max {
				t.Fatalf("next sweep %s after the last started, want %s..%s", d, tc.min, tc.max)
			}
		})
	}
	// The jitter is the provider's own, the same at every sweep.
	a, b := nextSweep(t0, t0, interval, "CredentialProvider/ns/p"), nextSweep(t0.Add(time.Hour), t0.Add(time.Hour), interval, "CredentialProvider/ns/p")
	if b.Sub(a) != time.Hour {
		t.Fatalf("jitter moved between sweeps: %s then %s", a.Sub(t0), b.Sub(t0.Add(time.Hour)))
	}
}
