-- Argo CD resource actions of a quayside.dev Component.
-- rotate: regenerate the robot tokens once (sets quayside.dev/rotate).
-- It is disabled while Argo CD's sync itself owns that annotation (the
-- Component's manifest in git sets it): self-heal would put git's value
-- back, a distinct value, and rotate a second time. Commit a new value
-- instead (docs/side-repo.md, "Rotation requests under GitOps").
local actions = {}
actions["rotate"] = { ["disabled"] = false }

local function owns_rotate(entry)
  if entry.manager ~= "argocd-controller" or entry.fieldsV1 == nil then
    return false
  end
  local metadata = entry.fieldsV1["f:metadata"]
  return metadata ~= nil and metadata["f:annotations"] ~= nil
    and metadata["f:annotations"]["f:quayside.dev/rotate"] ~= nil
end

if obj.metadata.managedFields ~= nil then
  for _, entry in ipairs(obj.metadata.managedFields) do
    if owns_rotate(entry) then
      actions["rotate"]["disabled"] = true
    end
  end
end
return actions
