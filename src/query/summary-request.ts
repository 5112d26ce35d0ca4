/** The `summary` plan. (Stub: to be defined with its route.) */
export interface SummaryPlan {
  kind: 'summary';
}
