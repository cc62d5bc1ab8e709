package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The reducers decode data.object into small structs of the fields finance reads. Handing the
// whole object to encoding/json costs a validation pass and a decoding pass over every byte,
// most of them in fields no reducer reads (line items, payment method details, …); replay does
// it for every object, and for every event of a subscription. decodeInto walks the object with the
// envelope scanner instead, skips unread fields by bracket matching, sets plain scalars directly,
// walks nested structs, arrays and string maps the same way, and gives encoding/json only the
// values it does not handle. The result is the one
// encoding/json gives, field by field: the same name matching (exact, then case-insensitive, in
// field order), duplicate keys applied in order, null leaving non-nullable fields alone. Anything
// it does not handle the same way, and every error, goes to encoding/json itself (decodeObject),
// so failures and their messages are encoding/json's. TestDecodersAgreeOnTheSimulator and
// FuzzDecodeObject hold the two to the same rows.

var errNotPlain = errors.New("struct not handled by decodeInto")

// structPlan is how a struct type's fields are named in JSON.
type structPlan struct {
	exact  map[string]int // JSON name → field index
	folded map[string]int // ASCII-lower-cased JSON name → the first field of that name
	fields []jsonField    // in field order, for case-insensitive matches of non-ASCII keys
	plain  bool           // no embedded fields, tag options, name collisions or non-ASCII names
}

type jsonField struct {
	name  string
	index int
}

var plans sync.Map // reflect.Type → *structPlan

func planFor(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := &structPlan{exact: map[string]int{}, folded: map[string]int{}, plain: true}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			p.plain = false
			continue
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts != "" || strings.ContainsAny(name, `"\`) {
			p.plain = false
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := p.exact[name]; dup {
			p.plain = false
		}
		p.exact[name] = i
		p.fields = append(p.fields, jsonField{name, i})
		lower, ascii := lowerASCII([]byte(name))
		if !ascii {
			p.plain = false
		}
		if _, seen := p.folded[string(lower)]; !seen {
			p.folded[string(lower)] = i
		}
	}
	plans.Store(t, p)
	return p
}

// decodeInto decodes the JSON object raw (already known to be valid) into the struct v points to.
// On error v may be partly written.
func decodeInto(raw []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return errNotPlain
	}
	return decodeStruct(rv.Elem(), raw)
}

// decodeStruct decodes the JSON object raw into the struct value rv, key by key in order.
func decodeStruct(rv reflect.Value, raw []byte) error {
	p := planFor(rv.Type())
	if !p.plain {
		return errNotPlain
	}
	s := &scanner{b: raw}
	return s.fields(func(key, value []byte) error {
		// encoding/json's matching: the exact name, else the first field whose name equals the
		// key ignoring case (Unicode case folding: for ASCII keys against our ASCII names, ASCII
		// case folding).
		i, ok := p.exact[string(key)]
		if !ok {
			if lower, ascii := lowerASCII(key); ascii {
				i, ok = p.folded[string(lower)]
			} else {
				for _, f := range p.fields {
					if strings.EqualFold(f.name, string(key)) {
						i, ok = f.index, true
						break
					}
				}
			}
			if !ok {
				return nil // a field no reducer reads
			}
		}
		return setValue(rv.Field(i), value)
	})
}

// setValue decodes the JSON value raw into v as encoding/json would, including into what v
// already holds (a duplicate key decodes into the first one's result). Strings without escapes or
// non-ASCII bytes, integers, booleans, null, nested structs, slices and map[string]string are
// handled here; any other value, and anything of the wrong type, goes to encoding/json.
func setValue(v reflect.Value, raw []byte) error {
	if string(raw) == "null" {
		switch v.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return nil // encoding/json leaves other kinds alone on null
	}
	if k := v.Kind(); k != reflect.Pointer && k != reflect.Int64 && k != reflect.Bool && custom(v.Type()) {
		return json.Unmarshal(raw, v.Addr().Interface()) // its own UnmarshalJSON decides
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return setValue(v.Elem(), raw)
	case reflect.String:
		if s, ok := plainString(raw); ok {
			v.SetString(s)
			return nil
		}
	case reflect.Int64:
		if raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9' {
			if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				v.SetInt(n)
				return nil
			}
		}
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
			return nil
		case "false":
			v.SetBool(false)
			return nil
		}
	case reflect.Struct:
		if raw[0] == '{' && planFor(v.Type()).plain {
			return decodeStruct(v, raw)
		}
	case reflect.Slice:
		if raw[0] == '[' {
			return setSlice(v, raw)
		}
	case reflect.Map:
		if raw[0] == '{' && v.Type().Key() == reflect.TypeFor[string]() && v.Type().Elem() == reflect.TypeFor[string]() {
			return setStringMap(v, raw)
		}
	}
	return json.Unmarshal(raw, v.Addr().Interface())
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

var customTypes sync.Map // reflect.Type → bool

// custom says whether values of type t decode themselves (json.Unmarshaler on the pointer, as
// Decimal and json.RawMessage do): those go to encoding/json whole.
func custom(t reflect.Type) bool {
	if c, ok := customTypes.Load(t); ok {
		return c.(bool)
	}
	c := reflect.PointerTo(t).Implements(unmarshalerType)
	customTypes.Store(t, c)
	return c
}

// setSlice decodes a JSON array as encoding/json does: the slice's length is reset and each
// element decoded into the next slot, reusing the backing array (and what its slots hold); an
// empty array gives an empty, non-nil slice.
func setSlice(v reflect.Value, raw []byte) error {
	s := &scanner{b: raw, i: 1}
	i := 0
	for {
		if s.peek() == ']' { // peek skips the whitespace before the element too
			break
		}
		start := s.i
		if err := s.skip(); err != nil {
			return err
		}
		if i >= v.Cap() {
			v.Grow(1)
		}
		if i >= v.Len() {
			v.SetLen(i + 1)
		}
		if err := setValue(v.Index(i), raw[start:s.i]); err != nil {
			return err
		}
		i++
		if s.peek() == ',' {
			s.i++
		}
	}
	if i < v.Len() {
		v.SetLen(i)
	}
	if i == 0 {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return nil
}

// setStringMap decodes a JSON object into a map[string]string as encoding/json does: a nil map is
// made, existing keys are kept, and each value (null gives "") is set under its key.
func setStringMap(v reflect.Value, raw []byte) error {
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	s := &scanner{b: raw}
	return s.fields(func(key, val []byte) error {
		var str string
		if string(val) != "null" {
			var ok bool
			if str, ok = plainString(val); !ok {
				if err := json.Unmarshal(val, &str); err != nil {
					return err
				}
			}
		}
		v.SetMapIndex(reflect.ValueOf(string(key)), reflect.ValueOf(str))
		return nil
	})
}

// plainString is the value of a JSON string token that has no escapes and only ASCII bytes, the
// only kind whose bytes are its value.
func plainString(raw []byte) (string, bool) {
	if !isPlain(raw) {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

func isPlain(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// lowerASCII is key in ASCII lower case, or key itself when it has no upper-case letter (Stripe's
// keys never do): no allocation on the common path.
func lowerASCII(key []byte) ([]byte, bool) {
	ascii, upper := true, false
	for _, c := range key {
		if c >= 0x80 {
			ascii = false
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !ascii || !upper {
		return key, ascii
	}
	out := make([]byte, len(key))
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out, true
}
