package main

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// What the image and the shipped config give.
const (
	// Benthos' default http.address is 0.0.0.0:4195; config/postgres.yaml
	// sets no http section, and Benthos serves /ping, /ready and (with its
	// default prometheus metrics) /metrics there.
	httpPort = 4195
	// The command's config file, from the config ConfigMap.
	configFile = "/etc/intune-benthos/postgres.yaml"
	// The container that runs intune-benthos.
	mainContainer = "intune-benthos"
)

// The environment the inputs read in Kubernetes (issue 21): the tenants, how
// many at once, this pod's shard and how many there are, and (interval mode
// only) the interval.
const (
	envTenantsFile   = "INTUNE_TENANTS_FILE"
	envMaxConcurrent = "INTUNE_MAX_CONCURRENT_TENANTS"
	envShardIndex    = "INTUNE_SHARD_INDEX"
	envShardCount    = "INTUNE_SHARD_COUNT"
	envInterval      = "INTUNE_INTERVAL"
	envGoMemLimit    = "GOMEMLIMIT"

	// The downward API path of a StatefulSet pod's ordinal (Kubernetes 1.28+).
	podIndexField = "metadata.labels['apps.kubernetes.io/pod-index']"

	workloadIdentityLabel      = "azure.workload.identity/use"
	workloadIdentityAnnotation = "azure.workload.identity/client-id"
)

// envVar is a container's variable as the pod would get it.
type envVar struct {
	value     string // a literal, or a ConfigMap's value
	fieldPath string // from the downward API
	secretKey string // from a Secret's key
}

// checker gathers the problems of one workload.
type checker struct {
	set      *renderedSet
	example  *corev1.Secret
	shipped  string
	where    string
	problems []string
}

func (c *checker) fail(format string, args ...any) {
	c.problems = append(c.problems, c.where+": "+fmt.Sprintf(format, args...))
}

// checkSet checks every workload of a rendered overlay.
func checkSet(set *renderedSet, example *corev1.Secret, shipped string) []string {
	var problems []string
	if len(set.cronJobs)+len(set.statefulSets) == 0 {
		problems = append(problems, "no CronJob or StatefulSet is rendered")
	}
	for _, cj := range set.cronJobs {
		c := &checker{set: set, example: example, shipped: shipped, where: "CronJob " + cj.Name}
		c.cronJob(cj)
		problems = append(problems, c.problems...)
	}
	for _, sts := range set.statefulSets {
		c := &checker{set: set, example: example, shipped: shipped, where: "StatefulSet " + sts.Name}
		c.statefulSet(sts)
		problems = append(problems, c.problems...)
	}
	return problems
}

// cronJob: one-shot syncs, one at a time, bounded in time and retries.
func (c *checker) cronJob(cj *batchv1.CronJob) {
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		c.fail("concurrencyPolicy is %q, want Forbid: two syncs at once would write the same rows and state", cj.Spec.ConcurrencyPolicy)
	}
	job := cj.Spec.JobTemplate.Spec
	if job.BackoffLimit == nil {
		c.fail("jobTemplate.spec.backoffLimit is not set")
	}
	if job.ActiveDeadlineSeconds == nil || *job.ActiveDeadlineSeconds <= 0 {
		c.fail("jobTemplate.spec.activeDeadlineSeconds is not set")
	}
	if job.PodFailurePolicy != nil && job.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		c.fail("a podFailurePolicy needs restartPolicy Never, not %q", job.Template.Spec.RestartPolicy)
	}
	if rp := job.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
		c.fail("a Job's pods need restartPolicy Never or OnFailure, not %q", rp)
	}
	env := c.pod(&job.Template)
	if v, ok := env[envInterval]; ok && v.value != "" {
		c.fail("%s is %q: a CronJob's sync must be one-shot, or its Job never ends", envInterval, v.value)
	}
}

// statefulSet: interval mode, the tenants sharded by the pod's ordinal.
func (c *checker) statefulSet(sts *appsv1.StatefulSet) {
	tmpl := &sts.Spec.Template
	selector, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	switch {
	case err != nil || sts.Spec.Selector == nil:
		c.fail("spec.selector: missing or invalid (%v)", err)
	case selector.Empty() || !selector.Matches(labels.Set(tmpl.Labels)):
		c.fail("spec.selector %v does not select the template's labels %v", selector, tmpl.Labels)
	}
	if svc, ok := c.set.services[sts.Spec.ServiceName]; !ok {
		c.fail("serviceName %q: no such Service is rendered", sts.Spec.ServiceName)
	} else {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			c.fail("Service %s is not headless (clusterIP: None)", svc.Name)
		}
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
			c.fail("Service %s's selector %v does not select the pods %v", svc.Name, svc.Spec.Selector, tmpl.Labels)
		}
	}
	if tmpl.Spec.RestartPolicy != "" && tmpl.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		c.fail("a StatefulSet's pods need restartPolicy Always, not %q", tmpl.Spec.RestartPolicy)
	}

	env := c.pod(tmpl)
	if v := env[envInterval]; v.value == "" {
		c.fail("%s is not set: without it each pod syncs once and exits", envInterval)
	} else if d, err := time.ParseDuration(v.value); err != nil || d <= 0 {
		c.fail("%s is %q, not a positive duration", envInterval, v.value)
	}
	if v, ok := env[envShardIndex]; !ok {
		c.fail("%s is not set", envShardIndex)
	} else if v.fieldPath != podIndexField {
		c.fail("%s must come from the downward API field %s, got %+v", envShardIndex, podIndexField, v)
	}
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	if replicas < 1 {
		c.fail("replicas is %d", replicas)
	}
	if v, ok := env[envShardCount]; !ok {
		c.fail("%s is not set", envShardCount)
	} else if v.value != strconv.Itoa(int(replicas)) {
		c.fail("%s is %q but replicas is %d: each pod must know how many shards there are (kustomization.yaml's replacement copies replicas into it)", envShardCount, v.value, replicas)
	}
}

// pod checks a pod template and returns the main container's environment.
func (c *checker) pod(tmpl *corev1.PodTemplateSpec) map[string]envVar {
	spec := &tmpl.Spec

	if tmpl.Labels[workloadIdentityLabel] != "true" {
		c.fail("pod label %s: %q is not \"true\"", workloadIdentityLabel, tmpl.Labels[workloadIdentityLabel])
	}
	for key, want := range map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/path":   "/metrics",
		"prometheus.io/port":   strconv.Itoa(httpPort),
	} {
		if got := tmpl.Annotations[key]; got != want {
			c.fail("pod annotation %s is %q, want %q", key, got, want)
		}
	}

	if sa, ok := c.set.serviceAccounts[spec.ServiceAccountName]; !ok {
		c.fail("serviceAccountName %q: no such ServiceAccount is rendered", spec.ServiceAccountName)
	} else if sa.Annotations[workloadIdentityAnnotation] == "" {
		c.fail("ServiceAccount %s has no %s annotation", sa.Name, workloadIdentityAnnotation)
	}

	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		c.fail("pod securityContext.runAsNonRoot is not true")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		c.fail("pod securityContext.runAsUser is 0 (root)")
	}
	podSeccomp := psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault

	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		volumes[v.Name] = v
		c.volume(v)
	}

	var main *corev1.Container
	var env map[string]envVar
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		c.fail("no containers")
	}
	for i := range containers {
		ctr := &containers[i]
		where := "container " + ctr.Name
		c.container(ctr, where, volumes, podSeccomp)
		e := c.environment(ctr, where)
		if ctr.Name == mainContainer && i >= len(spec.InitContainers) {
			main, env = ctr, e
		}
	}
	if main == nil {
		c.fail("no container named %s", mainContainer)
		return map[string]envVar{}
	}
	c.mainContainer(spec, main, env)
	return env
}

// volume: a ConfigMap it names is rendered and has the keys it maps; a
// Secret it names is the documented one.
func (c *checker) volume(v *corev1.Volume) {
	switch {
	case v.ConfigMap != nil:
		c.configMapKeys("volume "+v.Name, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			if s.ConfigMap != nil {
				c.configMapKeys("volume "+v.Name, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional)
			}
			if s.Secret != nil {
				c.secretRef("volume "+v.Name, s.Secret.Name, "")
			}
		}
	case v.Secret != nil:
		c.secretRef("volume "+v.Name, v.Secret.SecretName, "")
	}
}

func (c *checker) configMapKeys(where, name string, items []corev1.KeyToPath, optional *bool) {
	cm, ok := c.set.configMaps[name]
	if !ok {
		if optional == nil || !*optional {
			c.fail("%s: ConfigMap %q is not rendered", where, name)
		}
		return
	}
	for _, it := range items {
		if !hasKey(cm, it.Key) {
			c.fail("%s: ConfigMap %s has no key %q", where, name, it.Key)
		}
	}
}

func hasKey(cm *corev1.ConfigMap, key string) bool {
	_, text := cm.Data[key]
	_, binary := cm.BinaryData[key]
	return text || binary
}

// secretRef: the workloads read one Secret, created out of band and
// documented by base/secret.example.yaml; a key they require must be there.
func (c *checker) secretRef(where, name, key string) {
	if c.example == nil {
		return
	}
	if name != c.example.Name {
		c.fail("%s: Secret %q is not the documented one (%s, base/secret.example.yaml)", where, name, c.example.Name)
		return
	}
	if key == "" {
		return
	}
	_, inData := c.example.Data[key]
	_, inString := c.example.StringData[key]
	if !inData && !inString {
		c.fail("%s: key %q of Secret %s is not in base/secret.example.yaml", where, key, name)
	}
}

// container: resources, security, writable paths.
func (c *checker) container(ctr *corev1.Container, where string, volumes map[string]*corev1.Volume, podSeccomp bool) {
	if ctr.Image == "" || !strings.ContainsAny(ctr.Image, ":@") {
		c.fail("%s: image %q has no tag or digest (the overlay's images: sets it)", where, ctr.Image)
	}

	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := ctr.Resources.Requests[name]
		lim, hasLim := ctr.Resources.Limits[name]
		if !hasReq {
			c.fail("%s: no %s request", where, name)
		}
		if !hasLim {
			c.fail("%s: no %s limit", where, name)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			c.fail("%s: %s request %s is above its limit %s", where, name, req.String(), lim.String())
		}
	}

	sc := ctr.SecurityContext
	if sc == nil {
		c.fail("%s: no securityContext", where)
		return
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		c.fail("%s: readOnlyRootFilesystem is not true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		c.fail("%s: capabilities.drop does not hold ALL", where)
	}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		c.fail("%s: capabilities.add %v", where, sc.Capabilities.Add)
	}
	if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
		c.fail("%s: runAsNonRoot is false", where)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		c.fail("%s: runAsUser is 0 (root)", where)
	}
	seccomp := podSeccomp
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	}
	if !seccomp {
		c.fail("%s: seccompProfile is not RuntimeDefault", where)
	}

	for _, m := range ctr.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			c.fail("%s: volumeMount %s: no such volume", where, m.Name)
			continue
		}
		writable := v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil
		if !m.ReadOnly && !writable {
			c.fail("%s: volumeMount %s at %s is not readOnly", where, m.Name, m.MountPath)
		}
	}
}

// environment resolves a container's variables as the kubelet would, from
// envFrom (rendered ConfigMaps; the documented Secret) and env.
func (c *checker) environment(ctr *corev1.Container, where string) map[string]envVar {
	env := map[string]envVar{}
	for _, from := range ctr.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := c.set.configMaps[from.ConfigMapRef.Name]
			if !ok {
				if from.ConfigMapRef.Optional == nil || !*from.ConfigMapRef.Optional {
					c.fail("%s: envFrom ConfigMap %q is not rendered", where, from.ConfigMapRef.Name)
				}
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = envVar{value: v}
			}
		case from.SecretRef != nil:
			c.secretRef(where+": envFrom", from.SecretRef.Name, "")
			if c.example != nil && from.SecretRef.Name == c.example.Name {
				for k := range c.example.StringData {
					env[from.Prefix+k] = envVar{secretKey: k}
				}
				for k := range c.example.Data {
					env[from.Prefix+k] = envVar{secretKey: k}
				}
			}
		}
	}
	for _, e := range ctr.Env {
		v := envVar{value: e.Value}
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.FieldRef != nil:
				v = envVar{fieldPath: vf.FieldRef.FieldPath}
			case vf.SecretKeyRef != nil:
				c.secretRef(where+": env "+e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
				v = envVar{secretKey: vf.SecretKeyRef.Key}
			case vf.ConfigMapKeyRef != nil:
				ref := vf.ConfigMapKeyRef
				c.configMapKeys(where+": env "+e.Name, ref.Name, []corev1.KeyToPath{{Key: ref.Key}}, ref.Optional)
				if cm, ok := c.set.configMaps[ref.Name]; ok {
					v = envVar{value: cm.Data[ref.Key]}
				}
			}
		}
		env[e.Name] = v
	}
	return env
}

// dsnVars finds the variables the config takes its DSNs from
// (`dsn: ${INTUNE_PG_DSN:}`).
var dsnVars = regexp.MustCompile(`(?m)^\s*dsn:\s*\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// mainContainer: the command, its config, the probes, the environment.
func (c *checker) mainContainer(spec *corev1.PodSpec, ctr *corev1.Container, env map[string]envVar) {
	where := "container " + ctr.Name

	// The command runs the mounted config, which is the shipped one.
	argv := append(slices.Clone(ctr.Command), ctr.Args...)
	i := slices.Index(argv, "-c")
	if i < 0 || i+1 >= len(argv) || argv[i+1] != configFile {
		c.fail("%s: command %q does not run `-c %s`", where, argv, configFile)
	}
	if cm, key, err := c.fileSource(spec, ctr, configFile); err != nil {
		c.fail("%s: %s: %v", where, configFile, err)
	} else if c.set.configMaps[cm].Data[key] != c.shipped {
		c.fail("%s: %s (ConfigMap %s, key %s) is not config/postgres.yaml", where, configFile, cm, key)
	}

	// Probes on Benthos' HTTP server.
	for _, p := range []struct {
		name, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/ping", ctr.LivenessProbe}, {"readinessProbe", "/ready", ctr.ReadinessProbe}} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			c.fail("%s: no %s with httpGet %s", where, p.name, p.path)
		case p.probe.HTTPGet.Path != p.path:
			c.fail("%s: %s path %q, want %s", where, p.name, p.probe.HTTPGet.Path, p.path)
		case portNumber(ctr, p.probe.HTTPGet.Port.String()) != httpPort:
			c.fail("%s: %s port %s is not Benthos' %d", where, p.name, p.probe.HTTPGet.Port.String(), httpPort)
		}
	}
	if !declaresPort(ctr, httpPort) {
		c.fail("%s: no containerPort %d (Benthos' HTTP server: probes and /metrics)", where, httpPort)
	}

	// What the shipped config cannot run without.
	for _, m := range dsnVars.FindAllStringSubmatch(c.shipped, -1) {
		if v, ok := env[m[1]]; !ok || (v.value == "" && v.secretKey == "") {
			c.fail("%s: %s, the config's DSN, is not set", where, m[1])
		}
	}

	// The inputs' environment in Kubernetes.
	tenants, ok := env[envTenantsFile]
	switch {
	case !ok || tenants.value == "":
		c.fail("%s: %s is not set", where, envTenantsFile)
	case !path.IsAbs(tenants.value):
		c.fail("%s: %s %q is not an absolute path", where, envTenantsFile, tenants.value)
	default:
		if _, _, err := c.fileSource(spec, ctr, tenants.value); err != nil {
			c.fail("%s: %s %s: %v", where, envTenantsFile, tenants.value, err)
		}
	}
	if v, ok := env[envMaxConcurrent]; !ok {
		c.fail("%s: %s is not set", where, envMaxConcurrent)
	} else if n, err := strconv.Atoi(v.value); err != nil || n < 1 {
		c.fail("%s: %s is %q, not a positive integer", where, envMaxConcurrent, v.value)
	}

	// GOMEMLIMIT, when set, below the memory limit.
	if v, ok := env[envGoMemLimit]; ok {
		limit, hasLimit := ctr.Resources.Limits[corev1.ResourceMemory]
		n, err := parseGoMemLimit(v.value)
		switch {
		case err != nil:
			c.fail("%s: %s %q: %v", where, envGoMemLimit, v.value, err)
		case hasLimit && n >= limit.Value():
			c.fail("%s: %s %s is not below the memory limit %s", where, envGoMemLimit, v.value, limit.String())
		}
	}

	// /tmp is writable although the root filesystem is not.
	tmpOK := false
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == "/tmp" && !m.ReadOnly {
			tmpOK = true
		}
	}
	if !tmpOK {
		c.fail("%s: no writable volume at /tmp", where)
	}
}

// declaresPort says whether the container declares a port.
func declaresPort(ctr *corev1.Container, port int32) bool {
	return slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port })
}

// portNumber resolves a probe's port, by number or by name.
func portNumber(ctr *corev1.Container, port string) int {
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range ctr.Ports {
		if p.Name == port {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// fileSource says which ConfigMap key a container sees at a file path.
func (c *checker) fileSource(spec *corev1.PodSpec, ctr *corev1.Container, file string) (configMap, key string, err error) {
	var mount *corev1.VolumeMount
	for i := range ctr.VolumeMounts {
		m := &ctr.VolumeMounts[i]
		dir := strings.TrimSuffix(m.MountPath, "/")
		if (file == dir || strings.HasPrefix(file, dir+"/")) && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = m
		}
	}
	if mount == nil {
		return "", "", fmt.Errorf("no volume is mounted there")
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")), "/")
	if mount.SubPath != "" {
		rel = path.Join(mount.SubPath, rel)
	}
	for _, v := range spec.Volumes {
		if v.Name != mount.Name {
			continue
		}
		var sources []*corev1.ConfigMapProjection
		switch {
		case v.ConfigMap != nil:
			sources = append(sources, &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items})
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					sources = append(sources, s.ConfigMap)
				}
			}
		default:
			return "", "", fmt.Errorf("volume %s is not from a ConfigMap", v.Name)
		}
		for _, s := range sources {
			cm, ok := c.set.configMaps[s.Name]
			if !ok {
				continue
			}
			if len(s.Items) == 0 && hasKey(cm, rel) {
				return s.Name, rel, nil
			}
			for _, it := range s.Items {
				if it.Path == rel && hasKey(cm, it.Key) {
					return s.Name, it.Key, nil
				}
			}
		}
		return "", "", fmt.Errorf("volume %s has no file %s", v.Name, rel)
	}
	return "", "", fmt.Errorf("volume %s is not defined", mount.Name)
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: a number of
// bytes with an optional unit B, KiB, MiB, GiB or TiB.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSuffix(s, u.suffix), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a byte count with an optional unit (B, KiB, MiB, GiB, TiB)")
	}
	return n * factor, nil
}
