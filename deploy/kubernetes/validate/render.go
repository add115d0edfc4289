package main

import (
	"fmt"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"
)

// object is one rendered object, decoded into its typed struct.
type object struct {
	kind, name string
	value      any
}

// renderedSet is what one overlay renders to.
type renderedSet struct {
	objects         []object
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	services        map[string]*corev1.Service
	cronJobs        []*batchv1.CronJob
	statefulSets    []*appsv1.StatefulSet
}

// typed returns an empty typed struct for an apiVersion and kind, or nil for
// a kind the manifests are not expected to hold (add it here, with checks,
// when they should).
func typed(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 Service":
		return &corev1.Service{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}
	}
	return nil
}

// decodeStrict decodes JSON into v as the API server's strict field
// validation does: field names match case-sensitively, and an unknown or
// duplicate field is an error, as is a value of the wrong type or format
// (a quantity, an int-or-string).
func decodeStrict(data []byte, v any) []string {
	strict, err := sigsjson.UnmarshalStrict(data, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	var out []string
	if err != nil {
		out = append(out, err.Error())
	}
	for _, e := range strict {
		out = append(out, e.Error())
	}
	return out
}

// render builds the kustomization in dir with kustomize's default options
// (those of `kubectl apply -k`) and decodes every object it yields.
func render(dir string) (*renderedSet, []string) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, []string{"kustomize build: " + err.Error()}
	}
	set := &renderedSet{
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		services:        map[string]*corev1.Service{},
	}
	var problems []string
	for _, r := range resources.Resources() {
		apiVersion, kind, name := r.GetApiVersion(), r.GetKind(), r.GetName()
		where := fmt.Sprintf("%s %s", kind, name)
		v := typed(apiVersion, kind)
		if v == nil {
			problems = append(problems, fmt.Sprintf("%s: apiVersion %q kind %q is not one the validator knows", where, apiVersion, kind))
			continue
		}
		data, err := r.MarshalJSON()
		if err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		if errs := decodeStrict(data, v); len(errs) > 0 {
			for _, e := range errs {
				problems = append(problems, where+": "+e)
			}
			continue
		}
		set.objects = append(set.objects, object{kind: kind, name: name, value: v})
		switch o := v.(type) {
		case *corev1.ConfigMap:
			set.configMaps[name] = o
		case *corev1.ServiceAccount:
			set.serviceAccounts[name] = o
		case *corev1.Service:
			set.services[name] = o
		case *batchv1.CronJob:
			set.cronJobs = append(set.cronJobs, o)
		case *appsv1.StatefulSet:
			set.statefulSets = append(set.statefulSets, o)
		case *corev1.Secret:
			problems = append(problems, where+": a Secret is rendered, and `kubectl apply -k` would overwrite the real one: keep it out of the kustomization (base/secret.example.yaml)")
		}
	}
	return set, problems
}

// readSecretExample decodes the example Secret strictly: it documents the
// Secret the workloads reference, its name and its keys.
func readSecretExample(path string) (*corev1.Secret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	nodes, err := kio.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(nodes) != 1 {
		return nil, fmt.Errorf("%s: %d objects, want one Secret", path, len(nodes))
	}
	js, err := yaml.YAMLToJSONStrict([]byte(nodes[0].MustString()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	secret := &corev1.Secret{}
	if errs := decodeStrict(js, secret); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	if secret.APIVersion != "v1" || secret.Kind != "Secret" {
		return nil, fmt.Errorf("%s: apiVersion %q kind %q, want v1 Secret", path, secret.APIVersion, secret.Kind)
	}
	return secret, nil
}
