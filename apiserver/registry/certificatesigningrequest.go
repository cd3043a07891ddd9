package registry

import (
	"crypto/x509"
	"encoding/pem"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func certificateSigningRequestBehaviour(r *Resource) {
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*certificatesv1.CertificateSigningRequest).Status = certificatesv1.CertificateSigningRequestStatus{}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		csr := obj.(*certificatesv1.CertificateSigningRequest)
		var errs field.ErrorList
		spec := field.NewPath("spec")
		if blk, _ := pem.Decode(csr.Spec.Request); blk == nil || blk.Type != "CERTIFICATE REQUEST" {
			errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, "PEM block type must be CERTIFICATE REQUEST"))
		} else if req, err := x509.ParseCertificateRequest(blk.Bytes); err != nil {
			errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, err.Error()))
		} else if err := req.CheckSignature(); err != nil {
			errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, err.Error()))
		}
		if len(csr.Spec.Usages) == 0 {
			errs = append(errs, field.Required(spec.Child("usages"), "usages must be provided"))
		}
		if csr.Spec.SignerName == "" {
			errs = append(errs, field.Required(spec.Child("signerName"), ""))
		}
		if s := csr.Spec.ExpirationSeconds; s != nil && *s < 600 {
			errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *s, "may not specify a duration less than 600 seconds (10 minutes)"))
		}
		return errs
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		return fields.Set{"spec.signerName": obj.(*certificatesv1.CertificateSigningRequest).Spec.SignerName}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			ageCol,
			col("SignerName", "string", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"]),
			col("Requestor", "string", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["request"]),
			col("RequestedDuration", "string", certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"]),
			col("Condition", "string", certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"]),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			csr := obj.(*certificatesv1.CertificateSigningRequest)
			signer := csr.Spec.SignerName
			if signer == "" {
				signer = "<none>"
			}
			dur := "<none>"
			if s := csr.Spec.ExpirationSeconds; s != nil {
				dur = duration.HumanDuration(time.Duration(*s) * time.Second)
			}
			return []interface{}{csr.Name, age(csr.CreationTimestamp), signer, csr.Spec.Username, dur, CSRCondition(csr)}, nil
		},
	}
}

// CSRCondition is the CONDITION cell: Denied, Approved or Pending, then
// Failed and Issued when they apply.
func CSRCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	status := "Pending"
	switch {
	case denied:
		status = "Denied"
	case approved:
		status = "Approved"
	}
	if failed {
		status += ",Failed"
	}
	if len(csr.Status.Certificate) > 0 {
		status += ",Issued"
	}
	return status
}

// UpdateCSRApproval applies an approval subresource write: only the
// Approved/Denied conditions change, like kube-apiserver's approval
// strategy; a request cannot be both approved and denied.
func UpdateCSRApproval(next, in *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("status", "conditions")
	var approved, denied bool
	conds := make([]certificatesv1.CertificateSigningRequestCondition, 0, len(in.Status.Conditions))
	for i, c := range in.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		}
		if c.Status == "" {
			c.Status = "True"
		}
		if (c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied) && c.Status != "True" {
			errs = append(errs, field.NotSupported(path.Index(i).Child("status"), c.Status, []string{"True"}))
		}
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = metav1.Now()
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = c.LastUpdateTime
		}
		conds = append(conds, c)
	}
	if approved && denied {
		errs = append(errs, field.Invalid(path, in.Status.Conditions, "Approved and Denied conditions are mutually exclusive"))
	}
	next.Status.Conditions = conds
	return errs
}
