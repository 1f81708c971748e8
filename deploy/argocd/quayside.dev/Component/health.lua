-- Argo CD health of a quayside.dev Component, from the conditions the
-- controller writes (docs/operations.md, "Condition reasons").
--   Healthy      Ready=True: the repository, the robots and every
--                Environment hold the current credentials generation.
--   Progressing  not reconciled yet (no status, or an older generation),
--                or on its way: credentials not provisioned yet, a
--                rotation or a delivery waiting for Environments.
--   Degraded     anything else that keeps it from Ready (Quay refusals,
--                a spec that cannot be served, a failed rotation, ...):
--                the message is the condition's, which says what to do.
-- A refused rotation request (condition RotationRequest) does not change the
-- health: the credentials work; the message names it. Nor do the stragglers
-- of a rotation finished at its deadline (condition Degraded): the Component
-- serves the other Environments, the message names them, and their own
-- health is Degraded.
-- Runs in Argo CD's Lua sandbox: no string library.
local hs = { status = "Progressing", message = "Waiting for quayside to reconcile the Component" }

-- Reasons of a not-Ready condition that mean "on its way", not "broken".
local progressing = {
  Pending = true,             -- CredentialsReady: robots not provisioned yet
  AwaitingCredentials = true, -- Propagated: nothing to deliver yet
  Propagating = true,         -- Propagated: Environments receiving the generation
  RotationInProgress = true,  -- Propagated: a rotation waits for Environments
}

if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "Waiting for quayside to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local c = {}
for _, condition in ipairs(obj.status.conditions) do
  c[condition.type] = condition
end

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.reason .. ": " .. condition.message
  end
  return condition.reason
end

local ready = c["Ready"]
if ready == nil or ready.status == "Unknown" then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = "Ready"
  if c["Propagated"] ~= nil and c["Propagated"].message ~= "" then
    hs.message = c["Propagated"].message
  end
  if c["RotationRequest"] ~= nil and c["RotationRequest"].status == "False" then
    hs.message = hs.message .. "; " .. describe(c["RotationRequest"])
  end
  if c["Degraded"] ~= nil and c["Degraded"].status == "True" then
    hs.message = hs.message .. "; " .. describe(c["Degraded"])
  end
  return hs
end

-- Ready=False: it names the first problem, or points at the condition to read.
local cause = ready
if ready.reason == "CredentialsNotReady" and c["CredentialsReady"] ~= nil then
  cause = c["CredentialsReady"]
elseif ready.reason == "NotPropagated" and c["Propagated"] ~= nil then
  cause = c["Propagated"]
end
if progressing[cause.reason] or cause.status == "Unknown" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = describe(cause)
return hs
