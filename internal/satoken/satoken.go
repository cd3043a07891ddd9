// Package satoken signs and verifies ServiceAccount tokens: the JWTs that
// kube-apiserver's TokenRequest API (serviceaccounts/token) issues and its
// bearer-token authenticator accepts. The format is upstream's: RS256 with
// the profile's ServiceAccount key (certs/sa.key, sa.pub), a "kid" header
// derived from the public key, and the claims
//
//	iss  https://kubernetes.default.svc.cluster.local
//	sub  system:serviceaccount:NAMESPACE:NAME
//	aud  [audiences...]
//	exp, iat, nbf, jti
//	kubernetes.io: {namespace, serviceaccount: {name, uid},
//	                pod: {name, uid}, node: {name, uid}, secret: {name, uid}, warnafter}
//
// The API is three calls: NewSigner(keyPEM).Sign(claims) for the API server,
// NewVerifier(pubPEM).Verify(token, audiences, now) for authentication. A
// verified token is only a claim: the authenticator must still check that
// the ServiceAccount (and the bound Pod, Secret or Node) exist with the UIDs
// the claims name, as kube-apiserver does.
package satoken

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Issuer is the iss claim of every token (kubeadm's and minikube's
// --service-account-issuer). It is also the default audience: tokens
// requested without audiences are for the API server itself.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Leeway is the clock skew Verify tolerates on exp and nbf (go-jose's
// default, which kube-apiserver uses).
const Leeway = time.Minute

// Ref names a Kubernetes object in the kubernetes.io claim.
type Ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Claims are the contents of a token.
type Claims struct {
	Issuer    string // "" when signing: Issuer
	Subject   string // "" when signing: Username(Namespace, ServiceAccount.Name)
	Audiences []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	ID        string // jti

	Namespace      string
	ServiceAccount Ref
	Pod            *Ref // the token is bound to a pod ...
	Node           *Ref // ... and the node it runs on, or to a node alone
	Secret         *Ref // or to a secret
	// WarnAfter is set when the API server extended a pod-bound token's
	// lifetime (kube-apiserver's --service-account-extend-token-expiration):
	// the token stays valid until Expiry, but a client using it after
	// WarnAfter holds a token older than it asked for.
	WarnAfter time.Time
}

// Username is the user name a ServiceAccount authenticates as.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Groups are the groups a ServiceAccount of namespace belongs to.
func Groups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace}
}

// Errors Verify returns. ErrNotServiceAccountToken means the token is not
// one of ours at all (not a JWT, or another issuer): an authenticator
// should let the next one try. Any other error rejects the token.
var (
	ErrNotServiceAccountToken = errors.New("not a service account token of this cluster")
	ErrInvalidSignature       = errors.New("invalid signature")
	ErrExpired                = errors.New("token has expired")
	ErrNotYetValid            = errors.New("token used before issued")
	ErrAudience               = errors.New("token audiences do not match")
)

// wire is the JSON of the claims, in upstream's field names.
type wire struct {
	Issuer     string          `json:"iss,omitempty"`
	Subject    string          `json:"sub,omitempty"`
	Audience   audience        `json:"aud,omitempty"`
	Expiry     int64           `json:"exp,omitempty"`
	IssuedAt   int64           `json:"iat,omitempty"`
	NotBefore  int64           `json:"nbf,omitempty"`
	ID         string          `json:"jti,omitempty"`
	Kubernetes *kubernetesWire `json:"kubernetes.io,omitempty"`
}

type kubernetesWire struct {
	Namespace      string `json:"namespace,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
	Pod            *Ref   `json:"pod,omitempty"`
	Secret         *Ref   `json:"secret,omitempty"`
	ServiceAccount Ref    `json:"serviceaccount,omitempty"`
	WarnAfter      int64  `json:"warnafter,omitempty"`
}

// audience is written as an array and read as an array or a string (RFC
// 7519 allows both).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// Signer signs tokens with one RSA key.
type Signer struct {
	key *rsa.PrivateKey
	kid string
}

// NewSigner reads a PEM RSA private key (PKCS#1 or PKCS#8).
func NewSigner(keyPEM []byte) (*Signer, error) {
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("service account key: no PEM block")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		key = k
	} else {
		k8, err8 := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err8 != nil {
			return nil, fmt.Errorf("service account key: %w", err)
		}
		rk, ok := k8.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("service account key: %T is not an RSA key", k8)
		}
		key = rk
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, kid: kid}, nil
}

// keyID is upstream's kid: the unpadded base64url SHA-256 of the PKIX
// public key.
func keyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("service account key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Sign returns the compact JWT of c. Issuer and Subject are filled in when
// empty.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.Issuer == "" {
		c.Issuer = Issuer
	}
	if c.Subject == "" {
		c.Subject = Username(c.Namespace, c.ServiceAccount.Name)
	}
	w := wire{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audiences, Expiry: unix(c.Expiry), IssuedAt: unix(c.IssuedAt),
		NotBefore: unix(c.NotBefore), ID: c.ID}
	if c.Namespace != "" || c.ServiceAccount != (Ref{}) {
		w.Kubernetes = &kubernetesWire{Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, Pod: c.Pod, Node: c.Node, Secret: c.Secret, WarnAfter: unix(c.WarnAfter)}
	}
	hb, err := json.Marshal(header{Alg: "RS256", Kid: s.kid})
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(w)
	if err != nil {
		return "", err
	}
	signing := b64(hb) + "." + b64(pb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signing + "." + b64(sig), nil
}

// Verifier returns the verifier of this signer's tokens.
func (s *Signer) Verifier() *Verifier {
	return &Verifier{key: &s.key.PublicKey, kid: s.kid}
}

// Verifier checks tokens against one RSA public key.
type Verifier struct {
	key *rsa.PublicKey
	kid string
}

// NewVerifier reads a PEM public key ("PUBLIC KEY", PKIX), an RSA private
// key, or a certificate.
func NewVerifier(pubPEM []byte) (*Verifier, error) {
	blk, _ := pem.Decode(pubPEM)
	if blk == nil {
		return nil, errors.New("service account public key: no PEM block")
	}
	var pub any
	var err error
	switch blk.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "RSA PRIVATE KEY", "PRIVATE KEY":
		s, serr := NewSigner(pubPEM)
		if serr != nil {
			return nil, serr
		}
		return s.Verifier(), nil
	default:
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("service account public key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("service account public key: %T is not an RSA key", pub)
	}
	kid, err := keyID(rk)
	if err != nil {
		return nil, err
	}
	return &Verifier{key: rk, kid: kid}, nil
}

// Verify checks token's signature, issuer and validity window at now (with
// Leeway) and, when audiences is not empty, that the token is meant for
// one of them. It returns the claims of a valid token.
func (v *Verifier) Verify(token string, audiences []string, now time.Time) (*Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrNotServiceAccountToken
	}
	hb, err1 := unb64(parts[0])
	pb, err2 := unb64(parts[1])
	sig, err3 := unb64(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ErrNotServiceAccountToken
	}
	var h header
	var w wire
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &w) != nil {
		return nil, ErrNotServiceAccountToken
	}
	if w.Issuer != Issuer {
		return nil, ErrNotServiceAccountToken
	}
	if h.Alg != "RS256" || (h.Kid != "" && h.Kid != v.kid) {
		return nil, ErrInvalidSignature
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(v.key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, ErrInvalidSignature
	}
	c := &Claims{Issuer: w.Issuer, Subject: w.Subject, Audiences: w.Audience, Expiry: fromUnix(w.Expiry), IssuedAt: fromUnix(w.IssuedAt),
		NotBefore: fromUnix(w.NotBefore), ID: w.ID}
	if k := w.Kubernetes; k != nil {
		c.Namespace, c.ServiceAccount, c.Pod, c.Node, c.Secret, c.WarnAfter = k.Namespace, k.ServiceAccount, k.Pod, k.Node, k.Secret, fromUnix(k.WarnAfter)
	}
	if !c.Expiry.IsZero() && now.After(c.Expiry.Add(Leeway)) {
		return nil, ErrExpired
	}
	if !c.NotBefore.IsZero() && now.Add(Leeway).Before(c.NotBefore) {
		return nil, ErrNotYetValid
	}
	if len(audiences) > 0 && !intersects(c.Audiences, audiences) {
		return nil, ErrAudience
	}
	if c.Namespace == "" || c.ServiceAccount.Name == "" || c.Subject != Username(c.Namespace, c.ServiceAccount.Name) {
		return nil, fmt.Errorf("token lacks the kubernetes.io claims of a service account")
	}
	return c, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
