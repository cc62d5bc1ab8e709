// Package domain holds what the ledger knows about Stripe without doing any I/O: the event
// envelope it indexes, the sources an event can come from, and (as the read models grow) the pure
// reducers and ordering rules the projections apply.
package domain
