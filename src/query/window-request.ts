/** The `window` plan. (Stub: to be defined with its route.) */
export interface WindowPlan {
  kind: 'window';
}
