package edge

import (
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Geo resolves the client's country before routing, so routes can match on it and rules and
// upstreams can use it.
type Geo struct {
	db       *maxminddb.Reader
	header   string
	upstream string
}

// NewGeo opens the configured database (if any). Close releases it.
func NewGeo(cfg *config.Geo) (*Geo, error) {
	g := &Geo{upstream: textproto.CanonicalMIMEHeaderKey(cfg.UpstreamHeader)}
	if cfg.Header != "" {
		g.header = textproto.CanonicalMIMEHeaderKey(cfg.Header)
	}
	if cfg.Database != "" {
		db, err := maxminddb.Open(cfg.Database)
		if err != nil {
			return nil, fmt.Errorf("geo database %s: %w", cfg.Database, err)
		}
		g.db = db
	}
	return g, nil
}

// Close releases the database.
func (g *Geo) Close() error {
	if g.db != nil {
		return g.db.Close()
	}
	return nil
}

type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

// Resolve sets info.Country and the upstream country header. A client-sent header of that name
// is replaced; the CDN header is believed only from a trusted proxy.
func (g *Geo) Resolve(r *http.Request, info *httpx.Info) {
	country := ""
	if g.header != "" && info.PeerTrusted {
		if v := r.Header.Get(g.header); len(v) == 2 && upperAlpha(v) {
			country = v
		}
	}
	if country == "" && g.db != nil && info.ClientIP.IsValid() {
		var rec countryRecord
		if err := g.db.Lookup(info.ClientIP).Decode(&rec); err == nil && len(rec.Country.ISOCode) == 2 {
			country = rec.Country.ISOCode
		}
	}
	if country == "" {
		country = "XX"
	}
	info.Country = country
	r.Header[g.upstream] = []string{country}
	if r.Trailer != nil {
		delete(r.Trailer, g.upstream) // a declared trailer would stand beside the gateway's value
	}
}

func upperAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
