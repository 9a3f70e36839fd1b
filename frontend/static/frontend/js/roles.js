// What each project role may do, mirroring projects/permissions.py. The UI only
// hides what a role cannot do; the server still refuses it.

const MATRIX = {
  read: ["inspector", "annotator", "admin"],
  annotate: ["annotator", "admin"],
  review: ["inspector", "admin"],
  manage: ["admin"],
};

export function can(role, action) {
  const allowed = MATRIX[action];
  if (!allowed) throw new Error(`unknown action "${action}"`);
  return allowed.includes(role);
}

/**
 * The user's role in a project from whatever /api/auth/me/ or the project says:
 * staff are admins everywhere; otherwise a membership list or a map by project id.
 */
export function roleIn(me, project) {
  if (!me) return null;
  if (project && project.role) return project.role;
  if (me.is_staff) return "admin";
  const pid = String(project && typeof project === "object" ? project.id : project);
  const list = me.memberships || me.projects || [];
  if (Array.isArray(list)) {
    const m = list.find((x) => String(x.project ?? x.project_id ?? x.id) === pid);
    if (m) return m.role;
  }
  if (me.roles && typeof me.roles === "object") return me.roles[pid] ?? null;
  return null;
}
