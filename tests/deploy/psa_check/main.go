// psa_check evaluates every pod spec in Kubernetes manifests against a Pod Security Standard with
// the admission controller's own checks (k8s.io/pod-security-admission/policy), as a namespace
// labelled pod-security.kubernetes.io/enforce=LEVEL would at admission. It reads files only: no
// cluster, no network.
//
// usage: psa_check [-level restricted] [-versions latest,v1.27] FILE...
//
// Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs
// and PodTemplates are evaluated (init and ephemeral containers included); other kinds are passed
// over. A file with no pod spec is an error, so a broken render cannot pass vacuously.
// Exit 0 when every pod spec is allowed at every version, 1 otherwise, 2 on bad usage.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// podSpec is one pod spec found in a manifest, with the metadata PSA evaluates beside it.
type podSpec struct {
	name string // Kind/name
	meta metav1.ObjectMeta
	spec corev1.PodSpec
}

// podSpecs returns the pod specs of one YAML document (none for kinds without pods).
func podSpecs(doc []byte) ([]podSpec, error) {
	var head struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	name := head.Kind + "/" + head.Metadata.Name
	// Strict: a misspelt field (securityContex) would otherwise vanish and be judged as absent.
	decode := func(into any) error { return yaml.UnmarshalStrict(doc, into) }
	switch head.Kind {
	case "Pod":
		var o corev1.Pod
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.ObjectMeta, o.Spec}}, nil
	case "PodTemplate":
		var o corev1.PodTemplate
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Template.ObjectMeta, o.Template.Spec}}, nil
	case "ReplicationController":
		var o corev1.ReplicationController
		if err := decode(&o); err != nil {
			return nil, err
		}
		if o.Spec.Template == nil {
			return nil, errors.New("no spec.template")
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "Deployment":
		var o appsv1.Deployment
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "StatefulSet":
		var o appsv1.StatefulSet
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "DaemonSet":
		var o appsv1.DaemonSet
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "ReplicaSet":
		var o appsv1.ReplicaSet
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "Job":
		var o batchv1.Job
		if err := decode(&o); err != nil {
			return nil, err
		}
		return []podSpec{{name, o.Spec.Template.ObjectMeta, o.Spec.Template.Spec}}, nil
	case "CronJob":
		var o batchv1.CronJob
		if err := decode(&o); err != nil {
			return nil, err
		}
		t := o.Spec.JobTemplate.Spec.Template
		return []podSpec{{name, t.ObjectMeta, t.Spec}}, nil
	}
	return nil, nil
}

// readDocs splits a multi-document YAML file.
func readDocs(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

func main() {
	level := flag.String("level", "restricted", "Pod Security Standard: baseline | restricted")
	versions := flag.String("versions", "latest", "comma-separated policy versions (latest, v1.27, ...)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [-level restricted] [-versions latest,v1.27] FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	lvl, err := psaapi.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "-level %s: %v\n", *level, err)
		os.Exit(2)
	}
	var lvs []psaapi.LevelVersion
	for _, v := range strings.Split(*versions, ",") {
		ver, err := psaapi.ParseVersion(strings.TrimSpace(v))
		if err != nil {
			fmt.Fprintf(os.Stderr, "-versions %s: %v\n", v, err)
			os.Exit(2)
		}
		lvs = append(lvs, psaapi.LevelVersion{Level: lvl, Version: ver})
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "policy: %v\n", err)
		os.Exit(2)
	}

	failures, evaluated := 0, 0
	for _, path := range flag.Args() {
		docs, err := readDocs(path)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failures++
			continue
		}
		found := 0
		for i, doc := range docs {
			pods, err := podSpecs(doc)
			if err != nil {
				fmt.Printf("FAIL %s (document %d): %v\n", path, i+1, err)
				failures++
				continue
			}
			for _, p := range pods {
				found++
				for _, lv := range lvs {
					evaluated++
					r := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &p.meta, &p.spec))
					if r.Allowed {
						fmt.Printf("ok   %s %s: allowed by %s\n", path, p.name, lv.String())
					} else {
						fmt.Printf("FAIL %s %s: forbidden by %s: %s\n", path, p.name, lv.String(), r.ForbiddenDetail())
						failures++
					}
				}
			}
		}
		if found == 0 {
			fmt.Printf("FAIL %s: no pod spec in it\n", path)
			failures++
		}
	}
	fmt.Printf("%d pod security evaluations, %d failures\n", evaluated, failures)
	if failures > 0 {
		os.Exit(1)
	}
}
