package redaction

import "context"

// WithHookBeforeRefold returns req with fn run between the payload updates and the re-fold.
func WithHookBeforeRefold(req Request, fn func(context.Context) error) Request {
	req.beforeRefold = fn
	return req
}
