// Package dashboard serves the finance dashboard at /: one page, its script and styles embedded
// in the binary (no CDN: it works offline), behind the API's token (a login form sets it as an
// HttpOnly cookie the API also accepts).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/stripeledger/ledger/auth"
)

//go:embed static
var static embed.FS

// Config configures the dashboard.
type Config struct {
	Tokens   *auth.Tokens  // as the API's; none: open (serve allows that only on loopback)
	Audit    auth.Recorder // as the API's: the page and each sign-in are audited
	Proxies  *auth.Proxies
	NotFound http.Handler // answers every other path; default http.NotFound
	// Sinks, when set (ledger dev), serves what the local notification sinks received as JSON
	// (internal/devsink); the page /notifications shows it as Slack and email would.
	Sinks http.Handler
}

// Handler serves /, /login, /logout and /static/.
type Handler struct {
	cfg   Config
	guard *auth.Guard
	mux   *http.ServeMux
}

// New makes the dashboard.
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), guard: &auth.Guard{Tokens: cfg.Tokens, Audit: cfg.Audit, Proxies: cfg.Proxies}}
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", files))
	h.mux.HandleFunc("GET /login", h.loginForm)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /notifications", h.notifications)
	h.mux.HandleFunc("GET /payouts", h.payouts)
	h.mux.HandleFunc("GET /notifications/received", h.received)
	if cfg.NotFound != nil {
		h.mux.Handle("/", cfg.NotFound)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Tokens.Open() {
		serveFile(w, "static/index.html")
		return
	}
	start := time.Now()
	c, err := r.Cookie(auth.CookieName)
	if err != nil || c.Value == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	// Any valid token may see the page (every role includes read); the API checks each call.
	id, ok, err := h.cfg.Tokens.IdentifyContext(r.Context(), c.Value)
	if err != nil {
		h.guard.Observe(r, "GET /{$}", id, false, auth.StatusClientClosedRequest, start)
		return // the browser went away while the token waited for its check
	}
	if !ok {
		h.guard.Observe(r, "GET /{$}", id, false, http.StatusUnauthorized, start)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	serveFile(w, "static/index.html")
	h.guard.Observe(r, "GET /{$}", id, true, http.StatusOK, start)
}

// notifications is the page of what ledger dev's local sinks received.
func (h *Handler) notifications(w http.ResponseWriter, r *http.Request) {
	if h.signedIn(w, r, "GET /notifications") {
		serveFile(w, "static/notifications.html")
	}
}

// received is the sinks' JSON: 404 outside ledger dev, where there are none.
func (h *Handler) received(w http.ResponseWriter, r *http.Request) {
	if !h.signedIn(w, r, "GET /notifications/received") {
		return
	}
	if h.cfg.Sinks == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no local notification sinks: they run inside ledger dev only"}}` + "\n"))
		return
	}
	h.cfg.Sinks.ServeHTTP(w, r)
}

// signedIn checks the cookie's token as page does, redirecting to the form when there is none.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request, route string) bool {
	if h.cfg.Tokens.Open() {
		return true
	}
	start := time.Now()
	c, err := r.Cookie(auth.CookieName)
	if err != nil || c.Value == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return false
	}
	id, ok, err := h.cfg.Tokens.IdentifyContext(r.Context(), c.Value)
	if err != nil {
		h.guard.Observe(r, route, id, false, auth.StatusClientClosedRequest, start)
		return false
	}
	if !ok {
		h.guard.Observe(r, route, id, false, http.StatusUnauthorized, start)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return false
	}
	h.guard.Observe(r, route, id, true, http.StatusOK, start)
	return true
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	serveFile(w, "static/login.html")
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if !h.cfg.Tokens.Open() {
		// Audited with the verdict: 303 signed in, 401 refused (the browser is redirected either
		// way). The cookie then carries the token, and with it the token's role, to the API.
		start := time.Now()
		id, ok, err := h.cfg.Tokens.IdentifyContext(r.Context(), token)
		if err != nil {
			h.guard.Observe(r, "POST /login", id, false, auth.StatusClientClosedRequest, start)
			return
		}
		if !ok {
			if token != "" {
				h.guard.Observe(r, "POST /login", id, false, http.StatusUnauthorized, start)
			}
			http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
			return
		}
		defer h.guard.Observe(r, "POST /login", id, true, http.StatusSeeOther, start)
	}
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: token, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, Expires: time.Now().Add(30 * 24 * time.Hour)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: "", Path: "/", HttpOnly: true, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func serveFile(w http.ResponseWriter, name string) {
	b, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, "missing asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
