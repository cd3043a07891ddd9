package apiserver

import (
	"fmt"
	"math"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nanokube/nanokube/internal/satoken"
)

// Token lifetimes of kube-apiserver's TokenRequest.
const (
	defaultTokenSeconds = 3600
	minTokenSeconds     = 600
	// warnOnlyTokenSeconds is what the kube-api-access volume asks for; such
	// pod-bound tokens for the API server are valid for a year
	// (--service-account-extend-token-expiration) and carry warnafter.
	warnOnlyTokenSeconds = 3607
	extendedTokenSeconds = 365 * 24 * 3600
)

// serveToken is serviceaccounts/token (TokenRequest): a signed JWT for the
// ServiceAccount, optionally bound to a Pod, Secret or Node, like
// kube-apiserver's TokenREST.Create.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	gk := schema.GroupKind{Group: authenticationv1.GroupName, Kind: "TokenRequest"}
	if info.verb != "create" {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "serviceaccounts/token"}, info.verb)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	req := &authenticationv1.TokenRequest{}
	if err := s.decodeInto(w, r, body, req, authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")); err != nil {
		return err
	}
	name, ns := info.name, info.namespace
	if req.Name != "" && req.Name != name {
		return apierrors.NewInvalid(gk, name, field.ErrorList{field.Invalid(field.NewPath("metadata", "name"), req.Name, "must match the service account name if specified")})
	}
	if req.Namespace != "" && req.Namespace != ns {
		return apierrors.NewInvalid(gk, name, field.ErrorList{field.Invalid(field.NewPath("metadata", "namespace"), req.Namespace, "must match the service account namespace if specified")})
	}
	saObj, _, err := s.getObject(s.resource(schemaCoreV1, "serviceaccounts"), ns, name)
	if err != nil {
		return err
	}
	sa := saObj.(*corev1.ServiceAccount)
	if len(req.Spec.Audiences) == 0 {
		req.Spec.Audiences = []string{satoken.Issuer}
	}
	if req.Spec.ExpirationSeconds == nil {
		n := int64(defaultTokenSeconds)
		req.Spec.ExpirationSeconds = &n
	}
	req.Name, req.Namespace = sa.Name, sa.Namespace
	issued := time.Now()
	req.CreationTimestamp = metav1.NewTime(issued)
	req.Status = authenticationv1.TokenRequestStatus{}
	if errs := validateTokenRequest(req); len(errs) > 0 {
		return apierrors.NewInvalid(gk, "", errs)
	}

	claims := satoken.Claims{Audiences: req.Spec.Audiences, IssuedAt: issued, NotBefore: issued, ID: string(uuid.NewUUID()),
		Namespace: sa.Namespace, ServiceAccount: satoken.Ref{Name: sa.Name, UID: string(sa.UID)}}
	var pod *corev1.Pod
	if ref := req.Spec.BoundObjectRef; ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return badRequest("%v", err)
		}
		var uid string
		switch {
		case gv.Group == "" && ref.Kind == "Pod":
			obj, _, err := s.getObject(s.resource(schemaCoreV1, "pods"), ns, ref.Name)
			if err != nil {
				return err
			}
			pod = obj.(*corev1.Pod)
			if pod.Spec.ServiceAccountName != name {
				return badRequest("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", name)
			}
			uid = string(pod.UID)
			claims.Pod = &satoken.Ref{Name: pod.Name, UID: uid}
			if pod.Spec.NodeName != "" {
				claims.Node = &satoken.Ref{Name: pod.Spec.NodeName}
				if nobj, _, err := s.getObject(s.resource(schemaCoreV1, "nodes"), "", pod.Spec.NodeName); err == nil {
					claims.Node.UID = string(nobj.(*corev1.Node).UID)
				}
			}
		case gv.Group == "" && ref.Kind == "Node":
			obj, _, err := s.getObject(s.resource(schemaCoreV1, "nodes"), "", ref.Name)
			if err != nil {
				return err
			}
			uid = string(obj.(*corev1.Node).UID)
			claims.Node = &satoken.Ref{Name: ref.Name, UID: uid}
		case gv.Group == "" && ref.Kind == "Secret":
			obj, _, err := s.getObject(s.resource(schemaCoreV1, "secrets"), ns, ref.Name)
			if err != nil {
				return err
			}
			uid = string(obj.(*corev1.Secret).UID)
			claims.Secret = &satoken.Ref{Name: ref.Name, UID: uid}
		default:
			return badRequest("cannot bind token to object of type %s", gv.WithKind(ref.Kind).String())
		}
		if ref.UID != "" && string(ref.UID) != uid {
			return apierrors.NewConflict(schema.GroupResource{Group: gv.Group, Resource: ref.Kind}, ref.Name,
				fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
		}
	}
	lifetime := *req.Spec.ExpirationSeconds
	if pod != nil && lifetime == warnOnlyTokenSeconds && onlyAPIAudiences(req.Spec.Audiences) {
		claims.WarnAfter = issued.Add(time.Duration(lifetime) * time.Second)
		lifetime = extendedTokenSeconds
	}
	claims.Expiry = issued.Add(time.Duration(lifetime) * time.Second)
	tok, err := s.cfg.TokenSigner.Sign(claims)
	if err != nil {
		return fmt.Errorf("failed to generate token: %w", err)
	}
	req.Status = authenticationv1.TokenRequestStatus{Token: tok,
		ExpirationTimestamp: metav1.NewTime(issued.Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))}
	s.writeObject(w, r, http.StatusCreated, req, authenticationv1.SchemeGroupVersion)
	return nil
}

// validateTokenRequest is upstream's ValidateTokenRequest.
func validateTokenRequest(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "expirationSeconds")
	if n := *tr.Spec.ExpirationSeconds; n < minTokenSeconds {
		errs = append(errs, field.Invalid(p, n, "may not specify a duration less than 10 minutes"))
	} else if n > math.MaxUint32 {
		errs = append(errs, field.Invalid(p, n, "may not specify a duration larger than 2^32 seconds"))
	}
	return errs
}

// onlyAPIAudiences: every requested audience is one of the API server's.
func onlyAPIAudiences(auds []string) bool {
	for _, a := range auds {
		if a != satoken.Issuer {
			return false
		}
	}
	return true
}
