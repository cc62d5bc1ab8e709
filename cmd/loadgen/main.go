// Command loadgen sends realistic signed Stripe webhooks (2–6 KB, many types, 10% duplicates) at a
// ledger and prints what came back. It is bounded by -n and -timeout and stops by itself.
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080/webhooks/stripe -secret "$STRIPE_WEBHOOK_SECRET" -n 20000 -c 64
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/stripeledger/ledger/internal/loadgen"
)

func main() {
	var cfg loadgen.Config
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080/webhooks/stripe", "webhook endpoint")
	flag.StringVar(&cfg.Secret, "secret", os.Getenv("STRIPE_WEBHOOK_SECRET"), "signing secret (default $STRIPE_WEBHOOK_SECRET)")
	flag.IntVar(&cfg.Requests, "n", 10000, "deliveries to send")
	flag.IntVar(&cfg.Concurrency, "c", 64, "concurrent senders")
	flag.Float64Var(&cfg.DupRate, "dup", 0.10, "share of deliveries that re-send an earlier event")
	flag.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "bound on the whole run")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "event content seed")
	flag.StringVar(&cfg.IDPrefix, "prefix", fmt.Sprintf("evt_load%d", time.Now().Unix()), "event ID prefix")
	flag.Parse()
	if cfg.Secret == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -secret or STRIPE_WEBHOOK_SECRET is required")
		os.Exit(2)
	}
	st, err := loadgen.Run(context.Background(), cfg)
	fmt.Println(st)
	if err != nil || st.Failed > 0 {
		if st.FirstError != "" {
			fmt.Fprintln(os.Stderr, "first error:", st.FirstError)
		}
		os.Exit(1)
	}
}
