# Helm chart and kustomize manifests (helm/, deploy/k8s/), validated with real tools; included
# from CMakeLists.txt. Each test is a script that exits 77 (skipped) only when a tool it needs is
# missing: helm, tests/deploy/psa_check and the kubernetes-validate virtual environment come from
# scripts/setup.sh (build/tools/bin, build/deploy-venv in the source tree), kustomize is the
# kustomize binary or `kubectl kustomize`.
set(ATTATTR_DEPLOY_TOOLS ${PROJECT_SOURCE_DIR}/build/tools/bin)
set(ATTATTR_DEPLOY_VENV ${PROJECT_SOURCE_DIR}/build/deploy-venv)

function(attattr_deploy_test name)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${name}.sh ${PROJECT_SOURCE_DIR} ${ATTATTR_DEPLOY_TOOLS}
      ${ATTATTR_DEPLOY_VENV} ${ARGN})
  set_tests_properties(${name} PROPERTIES LABELS deploy SKIP_RETURN_CODE 77 TIMEOUT 300)
endfunction()

attattr_deploy_test(helm_chart_test)
attattr_deploy_test(helm_schema_test)
attattr_deploy_test(helm_server_flags_test $<TARGET_FILE:attattr-server> ${ATTATTR_SHARED_DIR}
  $<TARGET_FILE:attattr>)
attattr_deploy_test(k8s_schema_test)
attattr_deploy_test(k8s_server_flags_test $<TARGET_FILE:attattr-server> ${ATTATTR_SHARED_DIR}
  $<TARGET_FILE:attattr>)
# Pod Security Standard `restricted` on every rendered and kustomized pod spec, judged by
# k8s.io/pod-security-admission (tests/deploy/psa_check, built with Go into the tools directory;
# a cold first build compiles k8s.io/api, hence the longer timeout).
attattr_deploy_test(psa_restricted_test)
set_tests_properties(psa_restricted_test PROPERTIES TIMEOUT 900)
