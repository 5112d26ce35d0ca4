/** The `topn` plan. (Stub: to be defined with its route.) */
export interface TopNPlan {
  kind: 'topn';
}
