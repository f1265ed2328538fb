package httpvendor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// DefaultCostLimit bounds one evaluation of one expression when the
// definition sets no costLimit.
const DefaultCostLimit = 100_000

// Expression variables: what an expression of each place may read.
var (
	// itemVars: fields.*, over one item of an answer and the provider's
	// parameters.
	itemVars = []string{"item", "params"}
	// bodyVars: get.item, list.items, errors.message, over an answer.
	bodyVars = []string{"body"}
	// pageVars: pagination.next and total, over an answer and its headers.
	pageVars = []string{"body", "headers"}
)

// newEnv is the CEL environment of expressions that read vars: every
// variable is JSON (dyn) but headers (lower-case names to values) and
// params (names to values), maps of strings.
// The string extensions are there for the mapping of awkward fields.
func newEnv(vars []string) (*cel.Env, error) {
	opts := []cel.EnvOption{ext.Strings(), ext.Encoders(), cel.OptionalTypes()}
	for _, v := range vars {
		if v == "headers" || v == "params" {
			opts = append(opts, cel.Variable(v, cel.MapType(cel.StringType, cel.StringType)))
			continue
		}
		opts = append(opts, cel.Variable(v, cel.DynType))
	}
	return cel.NewEnv(opts...)
}

// expr is one compiled expression of a definition.
type expr struct {
	// field names it in the definition (fields.expiresAt), for messages.
	field string
	prog  cel.Program
}

// CompileError is an expression of a definition that does not compile.
type CompileError struct {
	Field      string
	Expression string
	Err        string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("%s: %q does not compile: %s", e.Field, e.Expression, e.Err)
}

// compiler compiles the expressions of one definition, each once.
type compiler struct {
	costLimit uint64
}

func newCompiler(costLimit uint64) *compiler {
	return &compiler{costLimit: costLimit}
}

// envs are the environments of the three places, built once: an
// environment is immutable and costly to build.
var (
	envsOnce sync.Once
	envs     map[string]*cel.Env
	envsErr  error
)

func envFor(vars []string) (*cel.Env, error) {
	envsOnce.Do(func() {
		envs = map[string]*cel.Env{}
		for _, vs := range [][]string{itemVars, bodyVars, pageVars} {
			env, err := newEnv(vs)
			if err != nil {
				envsErr = err
				return
			}
			envs[strings.Join(vs, ",")] = env
		}
	})
	if envsErr != nil {
		return nil, envsErr
	}
	return envs[strings.Join(vars, ",")], nil
}

// compile compiles src (over vars) for the definition's field; "" is no
// expression (nil).
func (c *compiler) compile(field, src string, vars []string) (*expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	env, err := envFor(vars)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, &CompileError{Field: field, Expression: src, Err: oneLine(iss.Err().Error())}
	}
	prog, err := env.Program(ast, cel.CostLimit(c.costLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, &CompileError{Field: field, Expression: src, Err: oneLine(err.Error())}
	}
	return &expr{field: field, prog: prog}, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// errCost is an evaluation that went over the definition's cost limit.
var errCost = errors.New("exceeded the definition's CEL cost limit")

// eval evaluates e over vars. Its errors never quote the input: an
// answer's text does not travel into a condition through them.
func (e *expr) eval(vars map[string]any) (ref.Val, error) {
	out, _, err := e.prog.Eval(vars)
	if err != nil {
		if strings.Contains(err.Error(), "cost limit exceeded") {
			return nil, fmt.Errorf("%s %w", e.field, errCost)
		}
		return nil, fmt.Errorf("%s: evaluation failed (%s)", e.field, evalClass(err))
	}
	return out, nil
}

// evalClass names an evaluation error without its operands: CEL's own
// words for a missing key quote the key, which comes from the definition,
// but a failed conversion may quote the answer's value.
func evalClass(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "no such key"):
		return msg // the key is the definition's
	case strings.Contains(msg, "no such overload"):
		return "a value has another type than the expression expects"
	}
	return "the answer does not have the shape the expression expects"
}

// isNull reports a null or absent result.
func isNull(v ref.Val) bool {
	return v == nil || v.Type() == types.NullType || types.IsUnknownOrError(v)
}

// evalString evaluates e as a string (numbers are written as JSON
// writes them); nil e or null is "".
func evalString(e *expr, vars map[string]any) (string, error) {
	if e == nil {
		return "", nil
	}
	v, err := e.eval(vars)
	if err != nil || isNull(v) {
		return "", err
	}
	switch x := v.Value().(type) {
	case string:
		return x, nil
	case int64, uint64, bool:
		return fmt.Sprint(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return fmt.Sprintf("%.0f", x), nil
		}
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("%s: gives a %s, not a string", e.field, v.Type().TypeName())
}

// evalTime evaluates e as a time: an RFC 3339 string, a date
// (YYYY-MM-DD, midnight UTC), Unix seconds or a CEL timestamp; nil e,
// null or "" is no time.
func evalTime(e *expr, vars map[string]any) (*time.Time, error) {
	if e == nil {
		return nil, nil
	}
	v, err := e.eval(vars)
	if err != nil || isNull(v) {
		return nil, err
	}
	var t time.Time
	switch x := v.Value().(type) {
	case string:
		if x == "" {
			return nil, nil
		}
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			if t, err = time.Parse(time.DateOnly, x); err != nil {
				return nil, fmt.Errorf("%s: not an RFC 3339 time or a date", e.field)
			}
		}
	case int64:
		t = time.Unix(x, 0)
	case float64:
		if math.IsNaN(x) || math.Abs(x) > 1e11 {
			return nil, fmt.Errorf("%s: not a Unix time", e.field)
		}
		t = time.Unix(int64(x), 0)
	case time.Time:
		t = x
	default:
		return nil, fmt.Errorf("%s: gives a %s, not a time", e.field, v.Type().TypeName())
	}
	t = t.UTC()
	return &t, nil
}

// evalBool evaluates e as a bool; nil e or null is def.
func evalBool(e *expr, vars map[string]any, def bool) (bool, error) {
	if e == nil {
		return def, nil
	}
	v, err := e.eval(vars)
	if err != nil || isNull(v) {
		return def, err
	}
	b, ok := v.Value().(bool)
	if !ok {
		return def, fmt.Errorf("%s: gives a %s, not a bool", e.field, v.Type().TypeName())
	}
	return b, nil
}

// evalList evaluates e as a list of JSON values; nil e is vars["body"].
func evalList(e *expr, vars map[string]any) ([]any, error) {
	if e == nil {
		items, ok := vars["body"].([]any)
		if !ok {
			return nil, errors.New("answer is not a list")
		}
		return items, nil
	}
	v, err := e.eval(vars)
	if err != nil {
		return nil, err
	}
	if isNull(v) {
		return nil, fmt.Errorf("%s: gives null, not a list", e.field)
	}
	native, err := v.ConvertToNative(jsonListType)
	if err != nil {
		return nil, fmt.Errorf("%s: gives a %s, not a list", e.field, v.Type().TypeName())
	}
	return native.([]any), nil
}

// evalValue evaluates e as a JSON value; nil e is vars["body"].
func evalValue(e *expr, vars map[string]any) (any, error) {
	if e == nil {
		return vars["body"], nil
	}
	v, err := e.eval(vars)
	if err != nil {
		return nil, err
	}
	if isNull(v) {
		return nil, fmt.Errorf("%s: gives null", e.field)
	}
	return toNative(v), nil
}

// Native types CEL values are converted back to.
var (
	jsonListType = reflect.TypeOf([]any{})
	jsonMapType  = reflect.TypeOf(map[string]any{})
)

// toNative turns a CEL value back into JSON values (maps and lists of
// what decodeJSON makes).
func toNative(v ref.Val) any {
	switch x := v.Value().(type) {
	case map[string]any, []any, string, int64, float64, bool, nil:
		return x
	}
	if m, err := v.ConvertToNative(jsonMapType); err == nil {
		return m
	}
	if l, err := v.ConvertToNative(jsonListType); err == nil {
		return l
	}
	return v.Value()
}

// decodeJSON decodes an answer into JSON values CEL reads: objects,
// lists, strings, bools, null, and numbers as int64 when whole (so that
// string(item.id) is "4950", not "4950.0") else float64.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
