package registry

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// rbacName is kube-apiserver's ValidateRBACName: any path segment name
// ("system:basic-user" is valid).
func rbacName(name string, prefix bool) []string { return path.IsValidPathSegmentName(name) }

func roleBehaviour(r *Resource) {
	r.ValidateName = rbacName
	r.Validate = func(obj runtime.Object) field.ErrorList {
		var rules []rbacv1.PolicyRule
		switch o := obj.(type) {
		case *rbacv1.Role:
			rules = o.Rules
		case *rbacv1.ClusterRole:
			rules = o.Rules
		}
		return validateRules(rules, field.NewPath("rules"))
	}
}

func validateRules(rules []rbacv1.PolicyRule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rules {
		rp := p.Index(i)
		if len(r.Verbs) == 0 {
			errs = append(errs, field.Required(rp.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 && (len(r.APIGroups) > 0 || len(r.Resources) > 0) {
			errs = append(errs, field.Invalid(rp.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		if len(r.NonResourceURLs) == 0 && len(r.APIGroups) == 0 {
			errs = append(errs, field.Required(rp.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.NonResourceURLs) == 0 && len(r.Resources) == 0 {
			errs = append(errs, field.Required(rp.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return errs
}

func bindingBehaviour(r *Resource, cluster bool) {
	r.ValidateName = rbacName
	r.Validate = func(obj runtime.Object) field.ErrorList {
		ref, subjects := bindingParts(obj)
		var errs field.ErrorList
		rp := field.NewPath("roleRef")
		if ref.APIGroup != rbacv1.GroupName {
			errs = append(errs, field.NotSupported(rp.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
		}
		kinds := []string{"ClusterRole", "Role"}
		if cluster {
			kinds = []string{"ClusterRole"}
		}
		if ref.Kind != "ClusterRole" && (cluster || ref.Kind != "Role") {
			errs = append(errs, field.NotSupported(rp.Child("kind"), ref.Kind, kinds))
		}
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
		for i, s := range subjects {
			sp := field.NewPath("subjects").Index(i)
			if s.Name == "" {
				errs = append(errs, field.Required(sp.Child("name"), ""))
			}
			switch s.Kind {
			case rbacv1.ServiceAccountKind:
				if s.APIGroup != "" {
					errs = append(errs, field.NotSupported(sp.Child("apiGroup"), s.APIGroup, []string{""}))
				}
				if cluster && s.Namespace == "" {
					errs = append(errs, field.Required(sp.Child("namespace"), ""))
				}
			case rbacv1.UserKind, rbacv1.GroupKind:
				if s.APIGroup != rbacv1.GroupName {
					errs = append(errs, field.NotSupported(sp.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
				}
			default:
				errs = append(errs, field.NotSupported(sp.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
			}
		}
		return errs
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		n, _ := bindingParts(obj)
		o, _ := bindingParts(old)
		if n != o {
			return field.ErrorList{field.Invalid(field.NewPath("roleRef"), n, "cannot change roleRef")}
		}
		return nil
	}
	r.Default = func(obj runtime.Object) {
		var subjects []rbacv1.Subject
		switch o := obj.(type) {
		case *rbacv1.RoleBinding:
			subjects = o.Subjects
		case *rbacv1.ClusterRoleBinding:
			subjects = o.Subjects
		}
		for i := range subjects {
			if subjects[i].APIGroup == "" && (subjects[i].Kind == rbacv1.UserKind || subjects[i].Kind == rbacv1.GroupKind) {
				subjects[i].APIGroup = rbacv1.GroupName
			}
		}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Role", "string", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]), ageCol,
			wide(col("Users", "string", "Users in the roleBinding")), wide(col("Groups", "string", "Groups in the roleBinding")),
			wide(col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"))},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			ref, subjects := bindingParts(obj)
			m := obj.(metav1.Object)
			var users, groups, sas []string
			for _, s := range subjects {
				switch s.Kind {
				case rbacv1.UserKind:
					users = append(users, s.Name)
				case rbacv1.GroupKind:
					groups = append(groups, s.Name)
				case rbacv1.ServiceAccountKind:
					sas = append(sas, s.Namespace+"/"+s.Name)
				}
			}
			return []interface{}{m.GetName(), ref.Kind + "/" + ref.Name, age(m.GetCreationTimestamp()),
				strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}, nil
		},
	}
}

func bindingParts(obj runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
	switch o := obj.(type) {
	case *rbacv1.RoleBinding:
		return o.RoleRef, o.Subjects
	case *rbacv1.ClusterRoleBinding:
		return o.RoleRef, o.Subjects
	}
	return rbacv1.RoleRef{}, nil
}
