package dashboard

import "net/http"

// payouts is the payout reconciliation page: its data comes from the API, which checks the
// cookie's token on every call.
func (h *Handler) payouts(w http.ResponseWriter, r *http.Request) {
	if h.signedIn(w, r, "GET /payouts") {
		serveFile(w, "static/payouts.html")
	}
}
