-- Argo CD resource action "rotate" of a quayside.dev Component: request one
-- rotation of its robot tokens. quayside rotates once per distinct value of
-- quayside.dev/rotate and never removes it, so the value is the time of the
-- request (UTC, to the second): a second click in the same second is the
-- same request. The Component's status.rotateHandled shows it handled.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["quayside.dev/rotate"] = "argocd-" .. os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
