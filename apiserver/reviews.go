package apiserver

import (
	"net/http"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nanokube/nanokube/apiserver/rbac"
)

// isReview: the authentication and authorization review kinds are
// answered, never stored.
func isReview(info *requestInfo) bool {
	switch info.res.GroupVersion.Group {
	case authorizationv1.GroupName, authenticationv1.GroupName:
		return info.verb == "create" && info.subresource == ""
	}
	return false
}

func (s *Server) serveReview(w http.ResponseWriter, r *http.Request, info *requestInfo) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj := info.res.New()
	if err := s.decodeInto(w, r, body, obj, info.res.GroupVersionKind()); err != nil {
		return err
	}
	caller := userFrom(r.Context())
	gk := info.res.GroupVersionKind().GroupKind()
	switch rv := obj.(type) {
	case *authorizationv1.SelfSubjectAccessReview:
		if rv.Spec.ResourceAttributes == nil && rv.Spec.NonResourceAttributes == nil {
			return apierrors.NewInvalid(gk, "", field.ErrorList{field.Required(field.NewPath("spec", "resourceAttributes"), "exactly one of nonResourceAttributes or resourceAttributes must be specified")})
		}
		rv.Status = s.accessReview(caller, rv.Spec.ResourceAttributes, rv.Spec.NonResourceAttributes)
	case *authorizationv1.SubjectAccessReview:
		if errs := validateSubjectSpec(&rv.Spec); len(errs) > 0 {
			return apierrors.NewInvalid(gk, "", errs)
		}
		rv.Status = s.accessReview(subjectUser(&rv.Spec), rv.Spec.ResourceAttributes, rv.Spec.NonResourceAttributes)
	case *authorizationv1.LocalSubjectAccessReview:
		if errs := validateSubjectSpec(&rv.Spec); len(errs) > 0 {
			return apierrors.NewInvalid(gk, "", errs)
		}
		if rv.Spec.ResourceAttributes == nil || rv.Spec.ResourceAttributes.Namespace != info.namespace {
			return apierrors.NewBadRequest("spec.resourceAttributes.namespace must match namespace: " + info.namespace)
		}
		rv.Namespace = info.namespace
		rv.Status = s.accessReview(subjectUser(&rv.Spec), rv.Spec.ResourceAttributes, nil)
	case *authorizationv1.SelfSubjectRulesReview:
		if rv.Spec.Namespace == "" {
			return apierrors.NewInvalid(gk, "", field.ErrorList{field.Required(field.NewPath("spec", "namespace"), "")})
		}
		rv.Status = s.rulesReview(caller, rv.Spec.Namespace)
	case *authenticationv1.SelfSubjectReview:
		rv.Status.UserInfo = userInfo(caller)
		rv.CreationTimestamp = metav1.Now()
	case *authenticationv1.TokenReview:
		if rv.Spec.Token == "" {
			return apierrors.NewInvalid(gk, "", field.ErrorList{field.Required(field.NewPath("spec", "token"), "")})
		}
		rv.Status = authenticationv1.TokenReviewStatus{}
		u, err := s.authenticateToken(rv.Spec.Token, rv.Spec.Audiences)
		if err != nil {
			rv.Status.Error = err.Error()
		} else {
			rv.Status.Authenticated = true
			rv.Status.User = userInfo(u)
			rv.Status.Audiences = rv.Spec.Audiences
			if len(rv.Status.Audiences) == 0 {
				rv.Status.Audiences = s.cfg.TokenAudiences
			}
		}
	default:
		return apierrors.NewMethodNotSupported(info.res.GroupVersionResource().GroupResource(), info.verb)
	}
	obj.GetObjectKind().SetGroupVersionKind(info.res.GroupVersionKind())
	s.writeObject(w, r, http.StatusCreated, obj, info.res.GroupVersion)
	return nil
}

func userInfo(u *User) authenticationv1.UserInfo {
	ui := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		ui.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			ui.Extra[k] = v
		}
	}
	return ui
}

func subjectUser(spec *authorizationv1.SubjectAccessReviewSpec) *User {
	u := &User{Name: spec.User, UID: spec.UID, Groups: spec.Groups}
	if len(spec.Extra) > 0 {
		u.Extra = map[string][]string{}
		for k, v := range spec.Extra {
			u.Extra[k] = v
		}
	}
	return u
}

func validateSubjectSpec(spec *authorizationv1.SubjectAccessReviewSpec) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec")
	if (spec.ResourceAttributes == nil) == (spec.NonResourceAttributes == nil) {
		errs = append(errs, field.Invalid(p.Child("resourceAttributes"), spec.ResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	if spec.User == "" && len(spec.Groups) == 0 {
		errs = append(errs, field.Invalid(p.Child("user"), spec.User, "at least one of user or group must be specified"))
	}
	return errs
}

// accessReview answers "may u do this?" like kube-apiserver's authorizer chain.
func (s *Server) accessReview(u *User, ra *authorizationv1.ResourceAttributes, na *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	var a rbac.Attributes
	if ra != nil {
		a = rbac.Attributes{ResourceRequest: true, Verb: ra.Verb, Namespace: ra.Namespace, APIGroup: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource, Name: ra.Name}
	} else {
		a = rbac.Attributes{Verb: na.Verb, Path: na.Path}
	}
	ok, reason := s.decide(u, a)
	return authorizationv1.SubjectAccessReviewStatus{Allowed: ok, Reason: reason}
}

// rulesReview lists what u may do in namespace (kubectl auth can-i --list).
func (s *Server) rulesReview(u *User, namespace string) authorizationv1.SubjectRulesReviewStatus {
	var rules []rbacv1.PolicyRule
	if isMaster(u) || s.cfg.AlwaysAllow {
		rules = []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}, {Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}
	}
	rules = append(rules, s.rbac.Rules(rbac.User{Name: u.Name, Groups: u.Groups}, namespace)...)
	st := authorizationv1.SubjectRulesReviewStatus{ResourceRules: []authorizationv1.ResourceRule{}, NonResourceRules: []authorizationv1.NonResourceRule{}}
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: slices.Clone(r.Verbs), NonResourceURLs: slices.Clone(r.NonResourceURLs)})
			continue
		}
		st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: slices.Clone(r.Verbs), APIGroups: slices.Clone(r.APIGroups),
			Resources: slices.Clone(r.Resources), ResourceNames: slices.Clone(r.ResourceNames)})
	}
	return st
}
