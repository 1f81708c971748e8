-- Argo CD health of a quayside.dev Environment, from the conditions the
-- controller writes (docs/operations.md, "Condition reasons").
--   Healthy      Ready=True: the pull Secrets are applied and linked (and,
--                with a side repository, its folder is committed).
--   Progressing  not reconciled yet (no status, or an older generation), or
--                waiting on something that is on its way: the GitOps engine
--                has yet to apply the committed Secrets (AwaitingEngine), or
--                the change waits in a pull request (AwaitingReview).
--   Degraded     anything else that keeps it from Ready (no grant in the
--                target namespace, an invalid spec, the side repository or
--                the target cluster failing, ...): the condition's message,
--                which says what to do.
-- Runs in Argo CD's Lua sandbox: no string library.
local hs = { status = "Progressing", message = "Waiting for quayside to reconcile the Environment" }

-- Reasons of a not-Ready condition that mean "on its way", not "broken".
local progressing = {
  AwaitingEngine = true, -- Applied: committed, the GitOps engine has yet to apply it
  AwaitingReview = true, -- Applied: the change waits in a pull request
}

if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "Waiting for quayside to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil or ready.status == "Unknown" then
  return hs
end

local message = ready.reason
if ready.message ~= nil and ready.message ~= "" then
  message = ready.reason .. ": " .. ready.message
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Ready"
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Applied" and condition.message ~= "" then
      hs.message = condition.message
    end
  end
  return hs
end
-- Ready=False repeats the first failing condition's reason and message.
if progressing[ready.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = message
return hs
