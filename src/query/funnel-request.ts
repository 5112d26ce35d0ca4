/** The `funnel` plan. (Stub: to be defined with its route.) */
export interface FunnelPlan {
  kind: 'funnel';
}
