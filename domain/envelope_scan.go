package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// The envelope is read with a small scanner instead of encoding/json's reflection: the body is
// validated once with json.Valid, then only the top level and data.object are walked, and every
// other value is skipped by bracket matching. On webhook-sized payloads (2-6 KB) this costs a
// fraction of json.Unmarshal into a struct, which re-scans every skipped value; ingestion decodes
// every request, so it shows in throughput. FuzzDecodeEnvelope checks it against encoding/json.

var errScan = errors.New("unexpected JSON shape")

// scanner walks JSON already known to be valid.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// str reads a string token. Plain ASCII is sliced out directly; escapes and other bytes go through
// encoding/json so they are decoded exactly as it would (including U+FFFD for invalid UTF-8).
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errScan
	}
	start := s.i
	s.i++
	slow := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			slow = true
			s.i += 2
			continue
		case '"':
			s.i++
			if !slow {
				return string(s.b[start+1 : s.i-1]), nil
			}
			var v string
			err := json.Unmarshal(s.b[start:s.i], &v)
			return v, err
		}
		if s.b[s.i] >= 0x80 {
			slow = true
		}
		s.i++
	}
	return "", errScan
}

// skipStr passes over a string token without decoding it: skipping is most of the walk over a
// payload, and a string allocated per skipped value was most of its cost.
func (s *scanner) skipStr() error {
	if s.peek() != '"' {
		return errScan
	}
	s.i++
	// Most strings are short (keys, IDs): a plain loop ends them sooner than a call would. A
	// longer one jumps to the next quote (bytes.IndexByte is vectorised); only when a backslash
	// comes before it is the quote possibly escaped: step over the escape and look again.
	for end := min(s.i+16, len(s.b)); s.i < end; s.i++ {
		switch s.b[s.i] {
		case '\\':
			return s.skipStrFrom(s.i)
		case '"':
			s.i++
			return nil
		}
	}
	return s.skipStrFrom(s.i)
}

// skipStrFrom ends a string whose opening quote is behind s.b[i].
func (s *scanner) skipStrFrom(i int) error {
	s.i = i
	for s.i <= len(s.b) {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			return errScan
		}
		k := bytes.IndexByte(s.b[s.i:s.i+j], '\\')
		if k < 0 {
			s.i += j + 1
			return nil
		}
		s.i += k + 2
	}
	return errScan
}

// skip passes over one value of any kind.
func (s *scanner) skip() error {
	switch s.peek() {
	case '"':
		return s.skipStr()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if err := s.skipStr(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return errScan
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
		return nil
	}
}

// rawFields is the top-level fields of the JSON object raw (already known to be valid) as raw
// values sliced from it, as json.Unmarshal into map[string]json.RawMessage would give them.
func rawFields(raw []byte) (map[string]json.RawMessage, error) {
	s := &scanner{b: raw}
	out := map[string]json.RawMessage{}
	err := s.fields(func(key, value []byte) error {
		out[string(key)] = json.RawMessage(value)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.ws()
	if s.i != len(raw) {
		return nil, errScan
	}
	return out, nil
}

// literal reads a number or true/false/null token.
func (s *scanner) literal() []byte {
	s.ws()
	start := s.i
	_ = s.skip()
	return s.b[start:s.i]
}

// object calls field for each key of the object at the cursor; field must consume the value.
func (s *scanner) object(field func(key string) error) error {
	return s.objectKeys(func(key []byte) error { return field(string(key)) })
}

// fields calls field with each key of the object at the cursor and its value's bytes (the value
// is consumed for it). Both slices are only valid during the call.
func (s *scanner) fields(field func(key, value []byte) error) error {
	return s.objectKeys(func(key []byte) error {
		s.ws()
		start := s.i
		if err := s.skip(); err != nil {
			return err
		}
		return field(key, s.b[start:s.i:s.i])
	})
}

// lastWins is object for decoding into fields as encoding/json does with a repeated key: the
// last value wins, so a value of the wrong type is an error only when no later value of the same
// key replaces it (the first such key's, when several remain).
func (s *scanner) lastWins(field func(key string) error) error {
	var order []string
	errs := map[string]error{}
	err := s.object(func(key string) error {
		s.ws()
		start := s.i
		err := field(key)
		var te *typeError
		if !errors.As(err, &te) {
			if err == nil {
				delete(errs, key)
			}
			return err
		}
		s.i = start // the handler may have stopped anywhere in the value
		if err := s.skip(); err != nil {
			return err
		}
		if _, seen := errs[key]; !seen {
			order = append(order, key)
		}
		errs[key] = err
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range order {
		if e, ok := errs[k]; ok {
			return e
		}
	}
	return nil
}

// objectKeys is object with each key as bytes: sliced from the input when it has no escapes or
// non-ASCII bytes (no allocation: most keys of a decoded object are looked up and dropped),
// decoded as str decodes it otherwise. key is only valid during the call.
func (s *scanner) objectKeys(field func(key []byte) error) error {
	if s.peek() != '{' {
		return errScan
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		start := s.i
		if err := s.skipStr(); err != nil {
			return err
		}
		key := s.b[start+1 : s.i-1]
		if !isPlain(s.b[start:s.i]) {
			end := s.i
			s.i = start
			v, err := s.str()
			if err != nil {
				return err
			}
			s.i = end
			key = []byte(v)
		}
		if s.peek() != ':' {
			return errScan
		}
		s.i++
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errScan
		}
	}
}

// typeError is a field of the wrong JSON type (encoding/json's UnmarshalTypeError).
type typeError struct{ field string }

func (e *typeError) Error() string { return "field " + strconv.Quote(e.field) + " has the wrong type" }

// optString reads a string or null into *dst (null leaves it nil, as encoding/json does).
func (s *scanner) optString(field string, dst **string) error {
	switch s.peek() {
	case 'n':
		s.literal()
		*dst = nil
		return nil
	case '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		*dst = &v
		return nil
	}
	return &typeError{field}
}

func scanEnvelope(raw []byte) (rawEnvelope, error) { return scanEnvelopeOf(raw, true) }

// scanEnvelopeOf scans raw, first checking it is valid JSON unless the caller knows it is.
func scanEnvelopeOf(raw []byte, validate bool) (rawEnvelope, error) {
	var r rawEnvelope
	if validate && !json.Valid(raw) {
		var v json.RawMessage
		if err := json.Unmarshal(raw, &v); err != nil {
			return r, err // the syntax error, with its offset
		}
		return r, errScan
	}
	s := &scanner{b: raw}
	if s.peek() != '{' {
		return r, &typeError{""}
	}
	err := s.lastWins(func(key string) error {
		switch key {
		case "id":
			return s.optString("id", &r.ID)
		case "object":
			return s.optString("object", &r.Object)
		case "type":
			return s.optString("type", &r.Type)
		case "api_version":
			return s.optString("api_version", &r.APIVersion)
		case "account":
			return s.optString("account", &r.Account)
		case "context":
			return s.optString("context", &r.Context)
		case "related_object":
			if s.peek() == 'n' {
				s.literal()
				r.Related = nil
				return nil
			}
			if s.peek() != '{' {
				return &typeError{"related_object"}
			}
			r.Related = new(rawRelated)
			return s.lastWins(func(key string) error {
				switch key {
				case "id":
					return s.optString("related_object.id", &r.Related.ID)
				case "type":
					return s.optString("related_object.type", &r.Related.Type)
				}
				return s.skip()
			})
		case "created":
			r.Created, r.CreatedAt = nil, nil
			if s.peek() == 'n' {
				s.literal()
				return nil
			}
			if s.peek() == '"' { // a thin event's RFC 3339 time; decodeEnvelope says whether that may be
				return s.optString("created", &r.CreatedAt)
			}
			c := s.peek()
			if c != '-' && (c < '0' || c > '9') {
				return &typeError{"created"}
			}
			v, err := strconv.ParseInt(string(s.literal()), 10, 64)
			if err != nil {
				return &typeError{"created"}
			}
			r.Created = &v
		case "livemode":
			switch string(s.literal()) {
			case "true":
				r.Livemode = true
			case "false", "null": // a repeated key's last value wins, and null is false
				r.Livemode = false
			default:
				return &typeError{"livemode"}
			}
		case "data":
			if s.peek() == 'n' {
				s.literal()
				r.Data = nil
				return nil
			}
			if s.peek() != '{' {
				return &typeError{"data"}
			}
			r.Data = new(rawData) // a repeated key replaces the earlier value
			return s.lastWins(func(key string) error {
				if key != "object" {
					return s.skip()
				}
				if s.peek() == 'n' {
					s.literal()
					r.Data.Object = nil
					return nil
				}
				if s.peek() != '{' {
					return &typeError{"data.object"}
				}
				r.Data.Object = new(rawObject)
				return s.lastWins(func(key string) error {
					switch key {
					case "id":
						return s.optString("data.object.id", &r.Data.Object.ID)
					case "object":
						return s.optString("data.object.object", &r.Data.Object.Object)
					}
					return s.skip()
				})
			})
		default:
			return s.skip()
		}
		return nil
	})
	return r, err
}
