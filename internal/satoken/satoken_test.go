package satoken

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func newKey(t *testing.T) (keyPEM, pubPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}

func TestSignVerify(t *testing.T) {
	keyPEM, pubPEM := newKey(t)
	s, err := NewSigner(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	claims := Claims{
		Audiences: []string{Issuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), ID: "jti-1",
		Namespace: "team", ServiceAccount: Ref{Name: "builder", UID: "sa-uid"},
		Pod: &Ref{Name: "web-0", UID: "pod-uid"}, Node: &Ref{Name: "n1", UID: "node-uid"}, WarnAfter: now.Add(30 * time.Minute),
	}
	tok, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}

	// The wire format is upstream's.
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]string
	json.Unmarshal(hdr, &h)
	if h["alg"] != "RS256" || h["kid"] == "" {
		t.Errorf("header = %s", hdr)
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var raw map[string]any
	json.Unmarshal(body, &raw)
	if raw["iss"] != Issuer || raw["sub"] != "system:serviceaccount:team:builder" || raw["jti"] != "jti-1" {
		t.Errorf("claims = %s", body)
	}
	if aud, ok := raw["aud"].([]any); !ok || len(aud) != 1 || aud[0] != Issuer {
		t.Errorf("aud = %v", raw["aud"])
	}
	k8s, _ := raw["kubernetes.io"].(map[string]any)
	if k8s["namespace"] != "team" || k8s["serviceaccount"].(map[string]any)["uid"] != "sa-uid" || k8s["pod"].(map[string]any)["name"] != "web-0" ||
		k8s["node"].(map[string]any)["name"] != "n1" || k8s["warnafter"] != float64(now.Add(30*time.Minute).Unix()) {
		t.Errorf("kubernetes.io = %v", k8s)
	}

	got, err := v.Verify(tok, []string{"other", Issuer}, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "system:serviceaccount:team:builder" || got.Pod.UID != "pod-uid" || !got.Expiry.Equal(now.Add(time.Hour)) || got.ServiceAccount.UID != "sa-uid" {
		t.Errorf("verified claims = %+v", got)
	}
	if _, err := s.Verifier().Verify(tok, nil, now); err != nil {
		t.Errorf("signer's own verifier: %v", err)
	}

	tests := []struct {
		name  string
		token string
		aud   []string
		at    time.Time
		want  error
	}{
		{"expired", tok, nil, now.Add(time.Hour + 2*Leeway), ErrExpired},
		{"within leeway", tok, nil, now.Add(time.Hour + Leeway/2), nil},
		{"not yet valid", tok, nil, now.Add(-2 * Leeway), ErrNotYetValid},
		{"other audience", tok, []string{"vault"}, now, ErrAudience},
		{"tampered", parts[0] + "." + b64([]byte(strings.Replace(string(body), "builder", "admin", 2))) + "." + parts[2], nil, now, ErrInvalidSignature},
		{"garbage", "not-a-jwt", nil, now, ErrNotServiceAccountToken},
		{"other issuer", parts[0] + "." + b64([]byte(`{"iss":"https://accounts.example"}`)) + "." + parts[2], nil, now, ErrNotServiceAccountToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token, tt.aud, tt.at)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}

	// Another key's verifier rejects the token.
	_, otherPub := newKey(t)
	ov, _ := NewVerifier(otherPub)
	if _, err := ov.Verify(tok, nil, now); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("other key: %v", err)
	}
}

func BenchmarkSign(b *testing.B) {
	keyPEM, _ := newKeyB(b)
	s, err := NewSigner(keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	c := Claims{Audiences: []string{Issuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), Namespace: "default", ServiceAccount: Ref{Name: "default", UID: "u"}}
	for b.Loop() {
		if _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	keyPEM, _ := newKeyB(b)
	s, _ := NewSigner(keyPEM)
	now := time.Now()
	tok, _ := s.Sign(Claims{Audiences: []string{Issuer}, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), Namespace: "default", ServiceAccount: Ref{Name: "default", UID: "u"}})
	v := s.Verifier()
	for b.Loop() {
		if _, err := v.Verify(tok, []string{Issuer}, now); err != nil {
			b.Fatal(err)
		}
	}
}

func newKeyB(b *testing.B) ([]byte, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), nil
}
